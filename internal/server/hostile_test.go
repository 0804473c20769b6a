package server_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/redistest"
	"github.com/recsys-dev/recsys/internal/server"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// hostileIDs are valid ids (UTF-8, at most 256 bytes) that mean something
// to Redis (hash tags, glob patterns), to our key escaping ('%', '}'), to
// text protocols (spaces, newlines, NUL) or to nobody (emoji).
var hostileIDs = []string{
	"a{b}c", "}", "{", "{}", "}{", "%7D", "%", "%25", "*", "?", "[a-z]", "\\",
	"a b", " ", "line\nbreak", "cr\rlf\n", "tab\t", "\x00nul", "ünï©ødé 🛒", "u:{x}:hist",
	strings.Repeat("é", 128), // 256 bytes
}

// TestHostileIDsRoundTrip stores events and items whose ids are hostileIDs
// through the real gRPC client and reads every one back exactly; deleting one
// user leaves every other user, even one whose id escapes to a similar key.
func TestHostileIDsRoundTrip(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	now := e.clock.Now()
	for i, user := range hostileIDs {
		// Each user views three hostile items and buys one.
		items := []string{hostileIDs[(i+1)%len(hostileIDs)], hostileIDs[(i+2)%len(hostileIDs)], hostileIDs[(i+3)%len(hostileIDs)]}
		e.record(t, ev(user, items[0], view, now), ev(user, items[1], view, now), ev(user, items[2], purchase, now))
	}
	for i, user := range hostileIDs {
		want := []string{hostileIDs[(i+1)%len(hostileIDs)], hostileIDs[(i+2)%len(hostileIDs)], hostileIDs[(i+3)%len(hostileIDs)]}
		res, err := e.events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: user})
		if err != nil {
			t.Fatalf("GetProfile(%q): %v", user, err)
		}
		p := res.GetProfile()
		var got []string
		for _, it := range p.GetItems() {
			got = append(got, it.GetItemId())
		}
		slices.Sort(got)
		slices.Sort(want)
		if p.GetUserId() != user || !slices.Equal(got, want) || !slices.Equal(p.GetPurchasedItemIds(), []string{hostileIDs[(i+3)%len(hostileIDs)]}) {
			t.Errorf("profile of %q: items %q purchased %q, want %q and %q", user, got, p.GetPurchasedItemIds(), want, hostileIDs[(i+3)%len(hostileIDs)])
		}
		rec, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: user, Count: 5, ExcludeItemIds: []string{"a0", user}})
		if err != nil {
			t.Fatalf("Recommend(%q): %v", user, err)
		}
		for _, it := range rec.GetItems() {
			if slices.Contains(want, it.GetItemId()) || it.GetItemId() == "a0" {
				t.Errorf("Recommend(%q) returned excluded or known item %q", user, it.GetItemId())
			}
		}
	}

	// Catalog items with hostile ids and categories.
	var items []*recsysv1.Item
	for i, id := range hostileIDs {
		items = append(items, &recsysv1.Item{ItemId: id, Category: hostileIDs[len(hostileIDs)-1-i], Price: float64(i), Available: i%2 == 0})
	}
	if _, err := e.catalog.UpsertItems(ctx, &recsysv1.UpsertItemsRequest{Items: items}); err != nil {
		t.Fatal(err)
	}
	got, err := e.catalog.GetItems(ctx, &recsysv1.GetItemsRequest{ItemIds: hostileIDs})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.GetItems()) != len(items) {
		t.Fatalf("GetItems: %d items, want %d", len(got.GetItems()), len(items))
	}
	for i, it := range got.GetItems() {
		if it.GetItemId() != items[i].GetItemId() || it.GetCategory() != items[i].GetCategory() || it.GetAvailable() != items[i].GetAvailable() {
			t.Errorf("item %d: got %q/%q/%v, want %q/%q/%v", i, it.GetItemId(), it.GetCategory(), it.GetAvailable(),
				items[i].GetItemId(), items[i].GetCategory(), items[i].GetAvailable())
		}
	}

	// "}" escapes to "%7D" inside the hash tag and "%7D" to "%257D": deleting
	// one must not touch the other.
	if _, err := e.events.DeleteUser(ctx, &recsysv1.DeleteUserRequest{UserId: "}"}); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"}", "%7D"} {
		res, err := e.events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: user})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(res.GetProfile().GetItems()); (user == "}") != (n == 0) {
			t.Errorf("after deleting %q: %q has %d items", "}", user, n)
		}
	}
	for _, user := range hostileIDs {
		if _, err := e.events.DeleteUser(ctx, &recsysv1.DeleteUserRequest{UserId: user}); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := redistest.Keys(ctx, redistest.Client(t), e.prefix+":u:")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("per-user keys left after deleting every user: %q", keys)
	}
}

// TestOversizedIDsAreRejected: ids over 256 bytes, up to 10 KB, are refused
// with InvalidArgument naming the field, in every place an id goes.
func TestOversizedIDsAreRejected(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	now := e.clock.Now()
	for _, n := range []int{257, 10 << 10} {
		long := strings.Repeat("k", n)
		for _, tc := range []struct {
			field string
			call  func() error
		}{
			{"user_id", func() error {
				_, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: long, Count: 1})
				return err
			}},
			{"exclude_item_ids[0]", func() error {
				_, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u", Count: 1, ExcludeItemIds: []string{long}})
				return err
			}},
			{"item_id", func() error {
				_, err := e.rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: long, Count: 1})
				return err
			}},
			{"events[0].event_id", func() error {
				x := ev("u", "a1", view, now)
				x.EventId = long
				_, err := e.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{x}})
				return err
			}},
			{"events[0].item_id", func() error {
				_, err := e.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{ev("u", long, view, now)}})
				return err
			}},
			{"user_id", func() error {
				_, err := e.events.DeleteUser(ctx, &recsysv1.DeleteUserRequest{UserId: long})
				return err
			}},
			{"items[0].item_id", func() error {
				_, err := e.catalog.UpsertItems(ctx, &recsysv1.UpsertItemsRequest{Items: []*recsysv1.Item{{ItemId: long}}})
				return err
			}},
			{"item_ids[0]", func() error {
				_, err := e.catalog.GetItems(ctx, &recsysv1.GetItemsRequest{ItemIds: []string{long}})
				return err
			}},
		} {
			st := status.Convert(tc.call())
			if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), tc.field+":") {
				t.Errorf("%d-byte %s: got %v %q, want InvalidArgument naming it", n, tc.field, st.Code(), st.Message())
			}
		}
	}
}

// rawCodec sends and receives message bytes as they are, so a test can send
// what no generated client would (invalid UTF-8 in a string field).
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

var _ encoding.CodecV2 = rawCodec{}

// wire builds protobuf bytes field by field.
type wire []byte

func (w wire) str(num protowire.Number, s string) wire {
	return protowire.AppendString(protowire.AppendTag(w, num, protowire.BytesType), s)
}

func (w wire) msg(num protowire.Number, m wire) wire {
	return protowire.AppendBytes(protowire.AppendTag(w, num, protowire.BytesType), m)
}

func (w wire) varint(num protowire.Number, v uint64) wire {
	return protowire.AppendVarint(protowire.AppendTag(w, num, protowire.VarintType), v)
}

// TestUndecodableRequestsAreInvalidArgument sends raw bytes: invalid UTF-8
// in string fields (which the Go client cannot send, but clients in other
// languages can) and broken wire data. grpc-go alone answers Internal; the
// server must answer InvalidArgument naming the field, after authentication.
func TestUndecodableRequestsAreInvalidArgument(t *testing.T) {
	e := newEnvWith(t, envOptions{model: true, server: func(c *server.Config, _ *server.Deps) {
		c.Auth = access.NewAuthenticator(testTokens(t), false)
	}})
	bad := "ok\xff\xfe"
	goodEvent := wire(nil).str(1, "e1").str(2, "u").str(3, "a1").varint(4, 1)
	badEvent := wire(nil).str(1, "e2").str(2, "u").str(3, bad).varint(4, 1)
	invoke := func(method string, req wire, opts ...grpc.CallOption) error {
		var out []byte
		in := []byte(req)
		return e.conn.Invoke(context.Background(), method, &in, &out, append(opts, grpc.ForceCodecV2(rawCodec{}))...)
	}
	for _, tc := range []struct {
		name, method string
		req          wire
		token        string
		wantCode     codes.Code
		wantMsg      string
	}{
		{"valid raw request passes", recsysv1.RecommendationService_Recommend_FullMethodName,
			wire(nil).str(1, "u").varint(2, 3), "tok-pages", codes.OK, ""},
		{"user id", recsysv1.RecommendationService_Recommend_FullMethodName,
			wire(nil).str(1, bad).varint(2, 3), "tok-pages", codes.InvalidArgument, "user_id: is not valid UTF-8"},
		{"excluded id", recsysv1.RecommendationService_Recommend_FullMethodName,
			wire(nil).str(1, "u").varint(2, 3).str(3, "fine").str(3, bad), "tok-pages", codes.InvalidArgument, "exclude_item_ids[1]: is not valid UTF-8"},
		{"placement", recsysv1.RecommendationService_Recommend_FullMethodName,
			wire(nil).str(1, "u").varint(2, 3).msg(4, wire(nil).str(1, bad)), "tok-pages", codes.InvalidArgument, "context.placement: is not valid UTF-8"},
		{"item page's placement", recsysv1.RecommendationService_SimilarItems_FullMethodName,
			wire(nil).str(1, "a1").varint(2, 3).str(5, bad), "tok-pages", codes.InvalidArgument, "placement: is not valid UTF-8"},
		{"event item", recsysv1.EventService_RecordEvents_FullMethodName,
			wire(nil).msg(1, goodEvent).msg(1, badEvent), "tok-events", codes.InvalidArgument, "events[1].item_id: is not valid UTF-8"},
		{"item category", recsysv1.CatalogService_UpsertItems_FullMethodName,
			wire(nil).msg(1, wire(nil).str(1, "i").str(2, bad)), "tok-operator", codes.InvalidArgument, "items[0].category: is not valid UTF-8"},
		{"broken wire data", recsysv1.RecommendationService_Recommend_FullMethodName,
			wire{0x0a, 0xff}, "tok-pages", codes.InvalidArgument, "request: is not a valid recsys.v1.RecommendRequest message"},
		{"authentication first", recsysv1.RecommendationService_Recommend_FullMethodName,
			wire(nil).str(1, bad).varint(2, 3), "", codes.Unauthenticated, ""},
		{"health check too", "/grpc.health.v1.Health/Check",
			wire(nil).str(1, bad), "", codes.InvalidArgument, "service: is not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []grpc.CallOption
			if tc.token != "" {
				opts = append(opts, as(tc.token))
			}
			st := status.Convert(invoke(tc.method, tc.req, opts...))
			if st.Code() != tc.wantCode || !strings.HasPrefix(st.Message(), tc.wantMsg) {
				t.Errorf("got %v %q, want %v %q", st.Code(), st.Message(), tc.wantCode, tc.wantMsg)
			}
		})
	}
	// The server still answers normally afterwards.
	if _, err := e.rec.Recommend(context.Background(), &recsysv1.RecommendRequest{UserId: "u", Count: 2}, as("tok-pages")); err != nil {
		t.Errorf("after the bad requests: %v", err)
	}
}
