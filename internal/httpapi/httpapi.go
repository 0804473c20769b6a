// Package httpapi serves the v1 API as HTTP/JSON for callers without gRPC:
// browsers, Node, Python, curl. It follows the Connect protocol's unary
// convention:
//
//	POST /recsys.v1.RecommendationService/Recommend
//	Content-Type: application/json
//	Authorization: Bearer TOKEN
//
//	{"userId": "u1", "count": 10}
//
// The body is the request message in the proto JSON mapping (field names in
// lowerCamelCase or as in the .proto; enums by name); the answer is the
// response message, or a Connect error {"code": "invalid_argument",
// "message": "..."} with the HTTP status of the gRPC code (400, 401, 403,
// 404, 413, 429 with Retry-After, 503, ...). An optional Connect-Timeout-Ms
// header sets the deadline. The server-streaming BatchRecommend answers
// application/x-ndjson: one {"result": {...}} object per line, and a last
// {"error": {...}} line if the stream fails after it began.
//
// Every call goes through an in-process gRPC connection to the server
// (server.DialInProcess), so authentication, roles, rate limits, deadline
// caps, validation, error mapping, metrics and logs are the gRPC edge's
// own, not a copy that could drift. Transcoding libraries (Connect's
// Vanguard, grpc-gateway) were not needed for this: the mapping is the
// standard protojson one, the routes are one per method, and the package
// stays small and dependency-free. The routes are found in the generated
// descriptors, so a new RPC is served without a change here.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	// The v1 descriptors the routes are made from.
	_ "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// Package is the proto package whose services are served.
const Package = "recsys.v1"

// RetryAfterHeader is the gRPC response header the server's rate limit
// sets (server.RetryAfterHeader); it becomes HTTP Retry-After.
const RetryAfterHeader = "retry-after"

// Config tunes the handler.
type Config struct {
	// CORSOrigins may call from a browser: exact origins
	// ("https://shop.example") or "*" for any. Empty: no CORS headers, so
	// browsers on other origins are refused.
	CORSOrigins []string
	// MaxBodyBytes caps a request body (default 4 MiB, the gRPC limit); a
	// larger one is answered 413.
	MaxBodyBytes int64
	// Logger logs what the gRPC edge does not see (bodies that are not
	// JSON never reach it). Default: discard.
	Logger *slog.Logger
}

// Handler serves the HTTP/JSON API.
type Handler struct {
	conn    grpc.ClientConnInterface
	cfg     Config
	methods map[string]protoreflect.MethodDescriptor // "/recsys.v1.Service/Method"
}

// New returns the handler calling conn (a connection to the server,
// normally server.DialInProcess).
func New(conn grpc.ClientConnInterface, cfg Config) (*Handler, error) {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 4 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{conn: conn, cfg: cfg, methods: map[string]protoreflect.MethodDescriptor{}}
	protoregistry.GlobalFiles.RangeFilesByPackage(Package, func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			for j := range sd.Methods().Len() {
				md := sd.Methods().Get(j)
				if md.IsStreamingClient() {
					continue // none today; HTTP/1.1 has no good mapping for them
				}
				h.methods["/"+string(sd.FullName())+"/"+string(md.Name())] = md
			}
		}
		return true
	})
	if len(h.methods) == 0 {
		return nil, fmt.Errorf("httpapi: no services of package %s registered", Package)
	}
	return h, nil
}

// Routes lists the paths served, sorted.
func (h *Handler) Routes() []string {
	var out []string
	for p := range h.methods {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cors(w, r) {
		return // a preflight request, answered
	}
	md, ok := h.methods[r.URL.Path]
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no method %s; POST /%s.<Service>/<Method>", r.URL.Path, Package))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "unimplemented", "use POST")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, "invalid_argument", fmt.Sprintf("Content-Type %q: want application/json", ct))
			return
		}
	}
	req, err := h.decode(r, md)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "resource_exhausted",
				fmt.Sprintf("request body larger than %d bytes", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "invalid_argument", err.Error())
		return
	}
	ctx, cancel, err := callContext(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_argument", err.Error())
		return
	}
	defer cancel()
	method := r.URL.Path
	if md.IsStreamingServer() {
		h.stream(ctx, w, method, md, req)
		return
	}
	res := newMessage(md.Output())
	var header metadata.MD
	err = h.conn.Invoke(ctx, method, req, res, grpc.Header(&header))
	if err != nil {
		writeStatus(w, err, header)
		return
	}
	b, err := protojson.Marshal(res)
	if err != nil {
		h.cfg.Logger.ErrorContext(ctx, "http: marshal response", "method", method, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// decode reads the request message from the body (an empty body is the
// empty message). Unknown fields are refused, naming them.
func (h *Handler) decode(r *http.Request, md protoreflect.MethodDescriptor) (proto.Message, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		return nil, err
	}
	req := newMessage(md.Input())
	if len(strings.TrimSpace(string(body))) == 0 {
		return req, nil
	}
	if err := protojson.Unmarshal(body, req); err != nil {
		return nil, fmt.Errorf("request body (%s): %s", md.Input().FullName(), strings.TrimPrefix(err.Error(), "proto: "))
	}
	return req, nil
}

func newMessage(d protoreflect.MessageDescriptor) proto.Message {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(d.FullName())
	if err != nil {
		panic(fmt.Sprintf("httpapi: message %s of a registered service is not registered: %v", d.FullName(), err))
	}
	return mt.New().Interface()
}

// callContext carries the caller's token and deadline to the gRPC call.
func callContext(r *http.Request) (context.Context, context.CancelFunc, error) {
	ctx := r.Context()
	md := metadata.MD{}
	if a := r.Header.Get("Authorization"); a != "" {
		md.Set("authorization", a)
	}
	ctx = metadata.NewOutgoingContext(ctx, md)
	if t := r.Header.Get("Connect-Timeout-Ms"); t != "" {
		ms, err := strconv.ParseInt(t, 10, 64)
		if err != nil || ms <= 0 {
			return nil, nil, fmt.Errorf("Connect-Timeout-Ms %q: want a positive number of milliseconds", t)
		}
		ctx, cancel := context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		return ctx, cancel, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	return ctx, cancel, nil
}

// stream answers a server-streaming method as JSON lines. An error before
// the first message is an ordinary error answer (so 401, 403 and 429 keep
// their status); after it, a last {"error": ...} line.
func (h *Handler) stream(ctx context.Context, w http.ResponseWriter, method string, md protoreflect.MethodDescriptor, req proto.Message) {
	desc := &grpc.StreamDesc{StreamName: string(md.Name()), ServerStreams: true}
	cs, err := h.conn.NewStream(ctx, desc, method)
	if err == nil {
		err = cs.SendMsg(req)
	}
	if err == nil {
		err = cs.CloseSend()
	}
	if err != nil {
		writeStatus(w, err, nil)
		return
	}
	flusher, _ := w.(http.Flusher)
	started := false
	for {
		res := newMessage(md.Output())
		err := cs.RecvMsg(res)
		if errors.Is(err, io.EOF) {
			if !started {
				w.Header().Set("Content-Type", "application/x-ndjson")
				w.WriteHeader(http.StatusOK)
			}
			return
		}
		if err != nil {
			if !started {
				header, _ := cs.Header()
				writeStatus(w, err, header)
				return
			}
			st := status.Convert(err)
			fmt.Fprintf(w, "{\"error\":%s}\n", errorJSON(codeName(st.Code()), st.Message()))
			return
		}
		b, err := protojson.Marshal(res)
		if err != nil {
			h.cfg.Logger.ErrorContext(ctx, "http: marshal response", "method", method, "err", err)
			return
		}
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		fmt.Fprintf(w, "{\"result\":%s}\n", b)
		if flusher != nil {
			flusher.Flush()
		}
	}
}

// writeStatus answers a gRPC error with its HTTP status and a Connect
// error body.
func writeStatus(w http.ResponseWriter, err error, header metadata.MD) {
	st := status.Convert(err)
	code := HTTPStatus(st.Code())
	if st.Code() == codes.ResourceExhausted {
		if v := header.Get(RetryAfterHeader); len(v) > 0 {
			w.Header().Set("Retry-After", v[0])
		}
	}
	writeError(w, code, codeName(st.Code()), st.Message())
}

func writeError(w http.ResponseWriter, httpStatus int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus)
	_, _ = w.Write(append(errorJSON(code, msg), '\n'))
}

func errorJSON(code, msg string) []byte {
	b, _ := json.Marshal(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{code, msg}) // cannot fail: two strings
	return b
}

// HTTPStatus is the HTTP status of a gRPC code (the Connect protocol's
// table).
func HTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	default: // Unknown, Internal, DataLoss
		return http.StatusInternalServerError
	}
}

// codeName is the Connect name of a code: "invalid_argument".
func codeName(c codes.Code) string {
	if c == codes.Canceled {
		return "canceled"
	}
	s := c.String() // "InvalidArgument"
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// cors sets the CORS headers for an allowed origin and answers preflight
// requests; it reports whether the request was a preflight.
func (h *Handler) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if origin == "" || len(h.cfg.CORSOrigins) == 0 {
		if preflight {
			w.WriteHeader(http.StatusNoContent) // no CORS headers: the browser refuses
		}
		return preflight
	}
	w.Header().Add("Vary", "Origin")
	if !slices.Contains(h.cfg.CORSOrigins, "*") && !slices.Contains(h.cfg.CORSOrigins, origin) {
		if preflight {
			w.WriteHeader(http.StatusNoContent)
		}
		return preflight
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Expose-Headers", "Retry-After")
	if preflight {
		w.Header().Set("Access-Control-Allow-Methods", "POST")
		w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Connect-Protocol-Version, Connect-Timeout-Ms, traceparent, tracestate")
		w.Header().Set("Access-Control-Max-Age", "7200")
		w.WriteHeader(http.StatusNoContent)
	}
	return preflight
}
