package server

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// requestCodec is the server's proto codec. It differs from grpc-go's only
// when a request does not decode: grpc-go turns any decoding error into
// codes.Internal before an interceptor runs (a status error returned by a
// codec is wrapped into Internal too), which blames the server for a
// client's bytes. Instead, requestCodec reports success, keeps the decoding
// error aside for the message, and the validation interceptor answers
// InvalidArgument naming the field (for invalid UTF-8 in a string field,
// the commonest case: a client in a language whose strings are bytes) or
// the message, after authentication has run as for any request.
//
// The message a handler could see is therefore never the bad one: a message
// with a recorded error is always rejected before its handler. To find the
// field, a request whose only defect is invalid UTF-8 is decoded again with
// a twin descriptor whose string fields are bytes (protobuf does not check
// bytes), and the first invalid string is located. Map keys stay strings,
// so invalid UTF-8 in a map key is reported for the message as a whole.
type requestCodec struct {
	base encoding.CodecV2

	// failed maps a message (by pointer identity) to its decoding error,
	// from Unmarshal until the interceptors take it; pending counts the
	// entries so the common case costs one atomic load.
	failed  sync.Map
	pending atomic.Int64

	twinsMu sync.Mutex
	twins   *protoregistry.Files // files with strings turned into bytes

	// encoded maps an answer (by pointer identity) to its bytes, from the
	// encodeAnswers interceptor (or checkedStream.SendMsg) until grpc-go
	// asks Marshal for them, so checking that an answer encodes costs no
	// second encoding. unencodable counts the answers that did not encode.
	encoded     sync.Map
	unencodable *prometheus.CounterVec
}

var _ encoding.CodecV2 = (*requestCodec)(nil)

func newRequestCodec() *requestCodec {
	return &requestCodec{base: encoding.GetCodecV2(grpcproto.Name), twins: new(protoregistry.Files),
		unencodable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recsys_unencodable_answers_total",
			Help: "Answers that could not be encoded (e.g. an id with invalid UTF-8), answered Internal, by method.",
		}, []string{"method"})}
}

func (c *requestCodec) Name() string { return grpcproto.Name }

// Marshal returns the bytes encode made for v, or encodes v.
func (c *requestCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := c.encoded.LoadAndDelete(v); ok {
		return b.(mem.BufferSlice), nil
	}
	return c.base.Marshal(v)
}

// errUnencodable marks an answer that cannot be encoded: a bug (or data
// that slipped past the id rule), so toStatus answers Internal and logs it
// at error level.
var errUnencodable = errors.New("answer cannot be encoded")

// encode encodes an answer before grpc-go does, so that a failure is seen
// by the interceptors: without it grpc-go fails the call after they ran, and
// the logs and metrics record grpc.code=OK for an answer the client got as
// Internal. The bytes are kept for Marshal.
func (c *requestCodec) encode(method string, v any) error {
	b, err := c.base.Marshal(v)
	if err != nil {
		c.unencodable.WithLabelValues(method).Inc()
		return fmt.Errorf("%w: %v", errUnencodable, err)
	}
	c.encoded.Store(v, b)
	return nil
}

// encodeAnswers is the unary interceptor that encodes every answer (see
// encode); it runs inside errorMapping, so a failure becomes an honest
// Internal in the logs and metrics.
func (c *requestCodec) encodeAnswers() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil {
			return resp, err
		}
		if err := c.encode(info.FullMethod, resp); err != nil {
			return nil, err
		}
		return resp, nil
	}
}

// Unmarshal decodes data into v. A decoding error is recorded for v (see
// take) and nil is returned; v is then either reset or holds the fields
// decoded leniently, and must be rejected.
func (c *requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	err := c.base.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return err // not ours to handle: grpc-go reports it
	}
	c.failed.Store(v, c.describe(data.Materialize(), m, err))
	c.pending.Add(1)
	return nil
}

// take returns and forgets the decoding error recorded for msg.
func (c *requestCodec) take(msg any) (error, bool) {
	if c.pending.Load() == 0 {
		return nil, false
	}
	e, ok := c.failed.LoadAndDelete(msg)
	if !ok {
		return nil, false
	}
	c.pending.Add(-1)
	return e.(error), true
}

// describe explains why b is not a valid m, naming the first field with
// invalid UTF-8 when that is the reason. m is left reset or holding the
// leniently decoded fields.
func (c *requestCodec) describe(b []byte, m proto.Message, decodeErr error) error {
	name := string(m.ProtoReflect().Descriptor().FullName())
	proto.Reset(m)
	if err := c.lenientUnmarshal(b, m); err == nil {
		if path := firstInvalidUTF8(m.ProtoReflect(), ""); path != "" {
			return invalid(path, "is not valid UTF-8")
		}
	}
	proto.Reset(m)
	return invalid("request", fmt.Sprintf("is not a valid %s message: %v", name, decodeErr))
}

// lenientUnmarshal decodes b into m through the twin of m's type, so string
// fields with invalid UTF-8 decode as they are.
func (c *requestCodec) lenientUnmarshal(b []byte, m proto.Message) error {
	md, err := c.twin(m.ProtoReflect().Descriptor())
	if err != nil {
		return err
	}
	dyn := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(b, dyn); err != nil {
		return err
	}
	copyTwin(m.ProtoReflect(), dyn)
	return nil
}

// twin returns the descriptor of md's type in the twin files, building the
// twin of md's file (and of the files it imports) on first use.
func (c *requestCodec) twin(md protoreflect.MessageDescriptor) (protoreflect.MessageDescriptor, error) {
	c.twinsMu.Lock()
	defer c.twinsMu.Unlock()
	if err := c.addTwinFile(md.ParentFile()); err != nil {
		return nil, err
	}
	d, err := c.twins.FindDescriptorByName(md.FullName())
	if err != nil {
		return nil, err
	}
	tmd, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a message in the twin files", md.FullName())
	}
	return tmd, nil
}

func (c *requestCodec) addTwinFile(fd protoreflect.FileDescriptor) error {
	if _, err := c.twins.FindFileByPath(fd.Path()); err == nil {
		return nil
	}
	imports := fd.Imports()
	for i := 0; i < imports.Len(); i++ {
		if err := c.addTwinFile(imports.Get(i).FileDescriptor); err != nil {
			return err
		}
	}
	fdp := protodesc.ToFileDescriptorProto(fd)
	for _, mp := range fdp.GetMessageType() {
		stringsToBytes(mp)
	}
	tfd, err := protodesc.NewFile(fdp, c.twins)
	if err != nil {
		return fmt.Errorf("twin of %s: %w", fd.Path(), err)
	}
	return c.twins.RegisterFile(tfd)
}

// stringsToBytes turns the string fields of mp and its nested messages into
// bytes, except in map entries (a map key cannot be bytes).
func stringsToBytes(mp *descriptorpb.DescriptorProto) {
	if mp.GetOptions().GetMapEntry() {
		return
	}
	for _, f := range mp.GetField() {
		if f.GetType() == descriptorpb.FieldDescriptorProto_TYPE_STRING {
			f.Type = descriptorpb.FieldDescriptorProto_TYPE_BYTES.Enum()
		}
	}
	for _, n := range mp.GetNestedType() {
		stringsToBytes(n)
	}
}

// copyTwin copies the fields of src (a twin message) into dst (the real
// one), turning bytes back into strings where dst has strings.
func copyTwin(dst, src protoreflect.Message) {
	fields := dst.Descriptor().Fields()
	src.Range(func(sfd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		fd := fields.ByNumber(sfd.Number())
		if fd == nil {
			return true
		}
		switch {
		case fd.IsList():
			dl, sl := dst.Mutable(fd).List(), v.List()
			for i := 0; i < sl.Len(); i++ {
				if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
					e := dl.NewElement()
					copyTwin(e.Message(), sl.Get(i).Message())
					dl.Append(e)
				} else {
					dl.Append(twinScalar(fd, sl.Get(i)))
				}
			}
		case fd.IsMap():
			dm := dst.Mutable(fd).Map()
			vfd := fd.MapValue()
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if vfd.Kind() == protoreflect.MessageKind {
					e := dm.NewValue()
					copyTwin(e.Message(), mv.Message())
					dm.Set(k, e)
				} else {
					dm.Set(k, mv) // map entries were not changed
				}
				return true
			})
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			copyTwin(dst.Mutable(fd).Message(), v.Message())
		default:
			dst.Set(fd, twinScalar(fd, v))
		}
		return true
	})
	if u := src.GetUnknown(); len(u) > 0 {
		dst.SetUnknown(append(protoreflect.RawFields(nil), u...))
	}
}

func twinScalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) protoreflect.Value {
	if fd.Kind() == protoreflect.StringKind {
		return protoreflect.ValueOfString(string(v.Bytes()))
	}
	if fd.Kind() == protoreflect.EnumKind {
		return protoreflect.ValueOfEnum(v.Enum())
	}
	return v
}

// firstInvalidUTF8 returns the path (as the validator names fields:
// "events[2].user_id") of the first string field of m holding invalid
// UTF-8, or "".
func firstInvalidUTF8(m protoreflect.Message, prefix string) string {
	var found string
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := prefix + string(fd.Name())
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && found == ""; i++ {
				at := name + "[" + strconv.Itoa(i) + "]"
				switch fd.Kind() {
				case protoreflect.StringKind:
					if !utf8.ValidString(l.Get(i).String()) {
						found = at
					}
				case protoreflect.MessageKind, protoreflect.GroupKind:
					found = firstInvalidUTF8(l.Get(i).Message(), at+".")
				}
			}
		case fd.IsMap():
			vfd := fd.MapValue()
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				at := name + "[" + strconv.Quote(k.String()) + "]"
				switch vfd.Kind() {
				case protoreflect.StringKind:
					if !utf8.ValidString(mv.String()) {
						found = at
					}
				case protoreflect.MessageKind:
					found = firstInvalidUTF8(mv.Message(), at+".")
				}
				return found == ""
			})
		case fd.Kind() == protoreflect.StringKind:
			if !utf8.ValidString(v.String()) {
				found = name
			}
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			found = firstInvalidUTF8(v.Message(), name+".")
		}
		return found == ""
	})
	return found
}

// decodeErrKey carries a request's decoding error from the first unary
// interceptor to the validation interceptor.
type decodeErrKey struct{}

// takeDecodeError is the FIRST unary interceptor: it moves the decoding
// error recorded for req (if any) into the context, where validation finds
// it. It must run for every unary RPC, before anything can reject the call,
// so that no recorded error is left behind.
func (c *requestCodec) takeDecodeError() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err, ok := c.take(req); ok {
			ctx = context.WithValue(ctx, decodeErrKey{}, err)
		}
		return handler(ctx, req)
	}
}

// decodeError returns the decoding error takeDecodeError found, if any.
func decodeError(ctx context.Context) error {
	err, _ := ctx.Value(decodeErrKey{}).(error)
	return err
}

// checkedStream is the ServerStream of a streaming RPC: every message it
// receives is checked for a decoding error and validated before the handler
// sees it.
type checkedStream struct {
	grpc.ServerStream
	codec  *requestCodec
	v      *validator
	method string
}

// SendMsg encodes m first (see encode), so an answer that cannot be encoded
// fails the stream with an error toStatus logs and maps to Internal.
func (s *checkedStream) SendMsg(m any) error {
	if err := s.codec.encode(s.method, m); err != nil {
		return err
	}
	return s.ServerStream.SendMsg(m)
}

func (s *checkedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if err, ok := s.codec.take(m); ok {
		return err
	}
	return s.v.check(m)
}

// streamValidation wraps every stream so received messages are checked.
func streamValidation(c *requestCodec, v *validator) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &checkedStream{ServerStream: ss, codec: c, v: v, method: info.FullMethod})
	}
}
