package server

import (
	"errors"
	"sort"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// requestTypes lists the request message of every RPC of package recsys.v1,
// in a fixed order, so the fuzz targets cover new RPCs without edits.
func requestTypes(t testing.TB) []protoreflect.MessageType {
	t.Helper()
	seen := map[protoreflect.FullName]bool{}
	var names []protoreflect.FullName
	protoregistry.GlobalFiles.RangeFilesByPackage("recsys.v1", func(fd protoreflect.FileDescriptor) bool {
		svcs := fd.Services()
		for i := 0; i < svcs.Len(); i++ {
			ms := svcs.Get(i).Methods()
			for j := 0; j < ms.Len(); j++ {
				if n := ms.Get(j).Input().FullName(); !seen[n] {
					seen[n] = true
					names = append(names, n)
				}
			}
		}
		return true
	})
	sort.Slice(names, func(i, j int) bool { return names[i] < names[j] })
	out := make([]protoreflect.MessageType, len(names))
	for i, n := range names {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(n)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = mt
	}
	if len(out) < 10 {
		t.Fatalf("found only %d request types", len(out))
	}
	return out
}

// fuzzSeeds are valid and invalid requests of several types.
func fuzzSeeds(t testing.TB) []proto.Message {
	ts := timestamppb.New(time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC))
	return []proto.Message{
		&recsysv1.RecommendRequest{UserId: "u1", Count: 10, ExcludeItemIds: []string{"a", "b"},
			Context: &recsysv1.RequestContext{Placement: "home", ContextItemId: "c"}},
		&recsysv1.RecommendRequest{UserId: "u{1}*?", Count: 501},
		&recsysv1.SimilarItemsRequest{ItemId: "i", Count: 3},
		&recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{
			{EventId: "e1", UserId: "u", ItemId: "i", Type: recsysv1.EventType_EVENT_TYPE_PURCHASE, Timestamp: ts, Quantity: 2},
			{EventId: "e2", UserId: "u", ItemId: "j", Type: recsysv1.EventType_EVENT_TYPE_CUSTOM, Weight: 2.5},
		}},
		&recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{{EventId: "e", UserId: "u", ItemId: "i", Type: 99}}},
		&recsysv1.UpsertItemsRequest{Items: []*recsysv1.Item{{ItemId: "i", Category: "c", Price: 9.5, Available: true, CreatedAt: ts}}},
		&recsysv1.GetItemsRequest{ItemIds: []string{"i", "j"}},
		&recsysv1.ActivateModelRequest{Version: "v1"},
		&recsysv1.DeleteUserRequest{UserId: "u"},
	}
}

func addSeeds(f *testing.F) {
	types := requestTypes(f)
	for _, m := range fuzzSeeds(f) {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		for i, mt := range types {
			if mt.Descriptor().FullName() == m.ProtoReflect().Descriptor().FullName() {
				f.Add(b, byte(i))
			}
		}
	}
	// Invalid UTF-8 in a nested string, and a truncated message.
	f.Add([]byte{0x0a, 0x08, 0x0a, 0x02, 'e', '1', 0x12, 0x02, 0xff, 0xfe}, byte(0))
	f.Add([]byte{0x0a, 0xff, 0x01}, byte(1))
}

// FuzzValidate decodes arbitrary bytes as any request type through the
// server's codec and runs the validator: it must never panic, an undecodable
// message must carry a request-defect error, and every message the validator
// accepts holds only valid UTF-8 and stays within the limits.
func FuzzValidate(f *testing.F) {
	addSeeds(f)
	types := requestTypes(f)
	codec := newRequestCodec()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	v := &validator{l: Limits{}.withDefaults(), now: func() time.Time { return now }}
	f.Fuzz(func(t *testing.T, b []byte, which byte) {
		m := types[int(which)%len(types)].New().Interface()
		if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, m); err != nil {
			t.Fatalf("Unmarshal returned %v; it must record errors instead", err)
		}
		if err, failed := codec.take(m); failed {
			var ia *invalidArgument
			if !errors.As(err, &ia) {
				t.Fatalf("decoding error %v is not a request defect", err)
			}
			return
		}
		err := v.check(m)
		if err != nil {
			var ia *invalidArgument
			if !errors.As(err, &ia) || ia.field == "" {
				t.Fatalf("validation error %v does not name a field", err)
			}
			return
		}
		if p := firstInvalidUTF8(m.ProtoReflect(), ""); p != "" {
			t.Fatalf("accepted a request with invalid UTF-8 in %s", p)
		}
		switch r := m.(type) {
		case *recsysv1.RecommendRequest:
			if r.GetCount() < 1 || int(r.GetCount()) > v.l.MaxCount || len(r.GetUserId()) > v.l.MaxIDBytes || len(r.GetExcludeItemIds()) > v.l.MaxExclude {
				t.Fatalf("accepted %v", r)
			}
		case *recsysv1.RecordEventsRequest:
			if len(r.GetEvents()) == 0 || len(r.GetEvents()) > v.l.MaxBatch {
				t.Fatalf("accepted %d events", len(r.GetEvents()))
			}
			for _, e := range r.GetEvents() {
				if e.GetEventId() == "" || e.GetUserId() == "" || e.GetItemId() == "" || !utf8.ValidString(e.GetItemId()) ||
					e.GetType() == recsysv1.EventType_EVENT_TYPE_UNSPECIFIED || e.GetQuantity() < 0 {
					t.Fatalf("accepted event %v", e)
				}
			}
		}
	})
}

// FuzzCodec checks the codec against protobuf itself: what protobuf
// decodes, the codec decodes identically without recording an error; what
// protobuf refuses, the codec records as a request defect, exactly once.
func FuzzCodec(f *testing.F) {
	addSeeds(f)
	types := requestTypes(f)
	codec := newRequestCodec()
	f.Fuzz(func(t *testing.T, b []byte, which byte) {
		mt := types[int(which)%len(types)]
		want := mt.New().Interface()
		wantErr := proto.Unmarshal(b, want)
		got := mt.New().Interface()
		if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got); err != nil {
			t.Fatalf("Unmarshal returned %v", err)
		}
		err, failed := codec.take(got)
		if failed != (wantErr != nil) {
			t.Fatalf("protobuf error %v, codec recorded %v", wantErr, err)
		}
		if _, again := codec.take(got); again {
			t.Fatal("an error was recorded twice")
		}
		if wantErr == nil && !proto.Equal(got, want) {
			t.Fatalf("decoded differently: %v, want %v", got, want)
		}
		if codec.pending.Load() != 0 {
			t.Fatalf("%d errors left pending", codec.pending.Load())
		}
	})
}
