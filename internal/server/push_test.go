package server_test

import (
	"context"
	"errors"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

const (
	pushEvent = recsysv1.EventType_EVENT_TYPE_PUSH

	noConfident = recsysv1.PushEmptyReason_PUSH_EMPTY_REASON_NO_CONFIDENT_ITEMS
	optedOut    = recsysv1.PushEmptyReason_PUSH_EMPTY_REASON_OPTED_OUT
	unknownUser = recsysv1.PushEmptyReason_PUSH_EMPTY_REASON_UNKNOWN_USER
	noHistory   = recsysv1.PushEmptyReason_PUSH_EMPTY_REASON_NO_HISTORY
	noModel     = recsysv1.PushEmptyReason_PUSH_EMPTY_REASON_NO_MODEL
	notEmpty    = recsysv1.PushEmptyReason_PUSH_EMPTY_REASON_UNSPECIFIED
)

// batch calls BatchRecommend and reads the whole stream.
func (e *env) batch(t *testing.T, req *recsysv1.BatchRecommendRequest) ([]*recsysv1.BatchRecommendResponse, error) {
	t.Helper()
	stream, err := e.rec.BatchRecommend(context.Background(), req)
	if err != nil {
		return nil, err
	}
	var out []*recsysv1.BatchRecommendResponse
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

func (e *env) mustBatch(t *testing.T, req *recsysv1.BatchRecommendRequest) []*recsysv1.BatchRecommendResponse {
	t.Helper()
	out, err := e.batch(t, req)
	if err != nil {
		t.Fatalf("BatchRecommend: %v", err)
	}
	return out
}

// pushUsers records the users every push test uses: alice likes a-items,
// bob b-items; opted-out viewed a-items then opted out; cold viewed only
// an item the model does not know; ghost was never seen.
func pushUsers(t *testing.T, e *env) {
	t.Helper()
	now := e.clock.Now()
	e.record(t,
		ev("alice", "a0", view, now.Add(-time.Hour)), ev("alice", "a1", cart, now.Add(-time.Hour)),
		ev("bob", "b0", view, now.Add(-time.Hour)),
		ev("opted-out", "a0", view, now.Add(-time.Hour)),
		ev("cold", "new-item", view, now.Add(-time.Hour)),
		// Popular items exist: a push must still never fall back to them.
		ev("crowd", "c5", purchase, now.Add(-time.Hour)), ev("crowd2", "c5", purchase, now.Add(-time.Hour)),
	)
	if _, err := e.events.SetOptOut(context.Background(), &recsysv1.SetOptOutRequest{UserId: "opted-out", OptedOut: true}); err != nil {
		t.Fatal(err)
	}
}

func TestBatchRecommendAnswersEveryUserInOrder(t *testing.T) {
	e := newEnv(t, true)
	pushUsers(t, e)
	users := []string{"alice", "ghost", "bob", "opted-out", "cold", "alice"}
	got := e.mustBatch(t, &recsysv1.BatchRecommendRequest{UserIds: users, Count: 3})
	if len(got) != len(users) {
		t.Fatalf("got %d messages for %d users", len(got), len(users))
	}
	want := []struct {
		cluster string
		reason  recsysv1.PushEmptyReason
	}{{"aaa", notEmpty}, {"", unknownUser}, {"bbb", notEmpty}, {"", optedOut}, {"", noHistory}, {"aaa", notEmpty}}
	for i, m := range got {
		if m.GetUserId() != users[i] || cluster(m.GetItems()) != want[i].cluster || m.GetEmptyReason() != want[i].reason {
			t.Errorf("message %d: got user %q items %v reason %v; want %q, cluster %q, %v",
				i, m.GetUserId(), ids(m.GetItems()), m.GetEmptyReason(), users[i], want[i].cluster, want[i].reason)
		}
		for _, it := range m.GetItems() {
			if it.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED || it.GetReason().GetKind() != recsysv1.ReasonKind_REASON_KIND_PROFILE_ITEM {
				t.Errorf("%s: item %v is not a personalized, explained item", m.GetUserId(), it)
			}
		}
		if m.GetModelVersion() != "v1" || m.GetRecommendationId() == "" {
			t.Errorf("message %d: version %q id %q", i, m.GetModelVersion(), m.GetRecommendationId())
		}
	}
	// The history is left out, as in Recommend.
	if a := ids(got[0].GetItems()); slices.Contains(a, "a0") || slices.Contains(a, "a1") {
		t.Errorf("alice got her own history: %v", a)
	}
	// Block scoring gives what Recommend's single scoring gives.
	rec, err := e.rec.Recommend(context.Background(), &recsysv1.RecommendRequest{UserId: "alice", Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i, it := range rec.GetItems() {
		p := got[0].GetItems()[i]
		if it.GetItemId() != p.GetItemId() || math.Abs(float64(it.GetScore()-p.GetScore())) > 1e-4 {
			t.Errorf("item %d: Recommend %v %v, BatchRecommend %v %v", i, it.GetItemId(), it.GetScore(), p.GetItemId(), p.GetScore())
		}
	}
}

func TestBatchRecommendMinScore(t *testing.T) {
	e := newEnv(t, true)
	pushUsers(t, e)
	all := e.mustBatch(t, &recsysv1.BatchRecommendRequest{UserIds: []string{"alice", "bob"}, Count: 5})
	a := all[0].GetItems()
	if len(a) != 5 {
		t.Fatalf("alice: got %v, want 5 items", ids(a))
	}
	for _, tc := range []struct {
		name     string
		min      float32
		want     []string // alice's items
		wantBobN int
	}{
		{"below every score", a[4].GetScore() - 1, ids(a), 5},
		{"at the third score: items at it stay", a[2].GetScore(), ids(a[:3]), -1},
		{"above the best: nothing worth sending", a[0].GetScore() + 1, nil, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.mustBatch(t, &recsysv1.BatchRecommendRequest{UserIds: []string{"alice", "bob"}, Count: 5, MinScore: proto.Float32(tc.min)})
			if g := ids(got[0].GetItems()); !slices.Equal(g, tc.want) && !(len(g) == 0 && len(tc.want) == 0) {
				t.Errorf("alice: got %v, want %v", g, tc.want)
			}
			if len(tc.want) == 0 && got[0].GetEmptyReason() != noConfident {
				t.Errorf("alice: empty answer with reason %v, want %v", got[0].GetEmptyReason(), noConfident)
			}
			for _, m := range got {
				for _, it := range m.GetItems() {
					if it.GetScore() < tc.min {
						t.Errorf("%s: item %s scores %v, below the minimum %v", m.GetUserId(), it.GetItemId(), it.GetScore(), tc.min)
					}
				}
			}
			if tc.wantBobN >= 0 && len(got[1].GetItems()) != tc.wantBobN {
				t.Errorf("bob: got %d items, want %d", len(got[1].GetItems()), tc.wantBobN)
			}
		})
	}
}

func TestBatchRecommendLeavesOutRecentPushes(t *testing.T) {
	e := newEnv(t, true)
	pushUsers(t, e)
	ctx := context.Background()
	req := &recsysv1.BatchRecommendRequest{UserIds: []string{"alice"}, Count: 3}
	first := ids(e.mustBatch(t, req)[0].GetItems())
	before, err := e.events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	// The push sender sent the first two a day ago.
	now := e.clock.Now()
	e.record(t, ev("alice", first[0], pushEvent, now.Add(-24*time.Hour)), ev("alice", first[1], pushEvent, now.Add(-24*time.Hour)))

	got := ids(e.mustBatch(t, req)[0].GetItems())
	if slices.Contains(got, first[0]) || slices.Contains(got, first[1]) || len(got) != 3 || got[0] != first[2] {
		t.Errorf("after pushing %v: got %v, want them left out and the rest moved up", first[:2], got)
	}
	// A request window shorter than a day lets them through again.
	short := proto.Clone(req).(*recsysv1.BatchRecommendRequest)
	short.DedupWindow = durationpb.New(12 * time.Hour)
	if got := ids(e.mustBatch(t, short)[0].GetItems()); !slices.Equal(got, first) {
		t.Errorf("with a 12h window: got %v, want %v", got, first)
	}
	// After the server's default window (7 days) they come back.
	e.clock.Advance(7 * 24 * time.Hour)
	if got := ids(e.mustBatch(t, req)[0].GetItems()); !slices.Equal(got, first) {
		t.Errorf("8 days later: got %v, want %v", got, first)
	}
	// A push is not interest: the profile's items are unchanged.
	after, err := e.events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.GetProfile().GetItems()) != len(before.GetProfile().GetItems()) ||
		!after.GetProfile().GetLastSeen().AsTime().Equal(before.GetProfile().GetLastSeen().AsTime()) {
		t.Errorf("pushes changed the profile: before %v, after %v", before.GetProfile(), after.GetProfile())
	}
}

func TestBatchRecommendSegments(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	now := e.clock.Now()
	day := 24 * time.Hour
	if _, err := e.catalog.UpsertItems(ctx, &recsysv1.UpsertItemsRequest{Items: []*recsysv1.Item{
		{ItemId: "a2", Available: true, Price: 30}, {ItemId: "b2", Available: true, Price: 10},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := e.cache.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	e.record(t,
		ev("newbie", "a0", view, now.Add(-2*day)),
		ev("regular", "b0", view, now.Add(-60*day)), ev("regular", "b2", purchase, now.Add(-2*day)),
		ev("regular", "b2", purchase, now.Add(-day)),
		ev("big-spender", "a0", view, now.Add(-50*day)), ev("big-spender", "a2", purchase, now.Add(-3*day)),
		ev("sleeper", "c0", view, now.Add(-40*day)),
	)
	seg := func(sel *recsysv1.SegmentSelector) []string {
		t.Helper()
		var users []string
		for _, m := range e.mustBatch(t, &recsysv1.BatchRecommendRequest{Segment: sel, Count: 2}) {
			users = append(users, m.GetUserId())
		}
		return users
	}
	for _, tc := range []struct {
		name string
		sel  *recsysv1.SegmentSelector
		want []string // most recently active first
	}{
		{"any", &recsysv1.SegmentSelector{}, []string{"regular", "newbie", "big-spender", "sleeper"}},
		{"new", &recsysv1.SegmentSelector{Lifecycle: recsysv1.Lifecycle_LIFECYCLE_NEW}, []string{"newbie"}},
		{"active", &recsysv1.SegmentSelector{Lifecycle: recsysv1.Lifecycle_LIFECYCLE_ACTIVE}, []string{"regular", "big-spender"}},
		{"dormant", &recsysv1.SegmentSelector{Lifecycle: recsysv1.Lifecycle_LIFECYCLE_DORMANT}, []string{"sleeper"}},
		{"frequent buyers", &recsysv1.SegmentSelector{MinPurchasesPer_30D: 0.6}, []string{"regular"}},
		{"spend at least 25", &recsysv1.SegmentSelector{MinSpend: 25}, []string{"big-spender"}},
		{"at most 2 users", &recsysv1.SegmentSelector{MaxUsers: 2}, []string{"regular", "newbie"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := seg(tc.sel); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	// GetProfile shows the segment; it moves with the clock alone.
	p, err := e.events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: "regular"})
	if err != nil {
		t.Fatal(err)
	}
	if s := p.GetProfile().GetSegment(); s.GetLifecycle() != recsysv1.Lifecycle_LIFECYCLE_ACTIVE || s.GetPurchases() != 2 ||
		s.GetSpend() != 20 || math.Abs(s.GetPurchasesPer_30D()-2.0/3) > 1e-9 {
		t.Errorf("segment of regular: got %v, want active, 2 purchases, spend 20, 0.667 per 30 days", s)
	}
	e.clock.Advance(31 * day)
	if got := seg(&recsysv1.SegmentSelector{Lifecycle: recsysv1.Lifecycle_LIFECYCLE_DORMANT}); !slices.Equal(got, []string{"regular", "newbie", "big-spender", "sleeper"}) {
		t.Errorf("31 days later, dormant: got %v, want everyone", got)
	}
	// Deleting a user takes them out of every segment.
	if _, err := e.events.DeleteUser(ctx, &recsysv1.DeleteUserRequest{UserId: "newbie"}); err != nil {
		t.Fatal(err)
	}
	if got := seg(&recsysv1.SegmentSelector{}); slices.Contains(got, "newbie") {
		t.Errorf("after DeleteUser: got %v", got)
	}
}

func TestBatchRecommendWithoutModel(t *testing.T) {
	e := newEnv(t, false)
	pushUsers(t, e)
	got := e.mustBatch(t, &recsysv1.BatchRecommendRequest{UserIds: []string{"alice", "ghost", "opted-out"}, Count: 3})
	want := []recsysv1.PushEmptyReason{noModel, unknownUser, optedOut}
	for i, m := range got {
		if len(m.GetItems()) != 0 || m.GetEmptyReason() != want[i] {
			t.Errorf("%s: got %v %v, want no items, %v", m.GetUserId(), ids(m.GetItems()), m.GetEmptyReason(), want[i])
		}
	}
}

func TestBatchRecommendRejectsBadRequests(t *testing.T) {
	e := newEnv(t, true)
	tooMany := make([]string, 10_001)
	for i := range tooMany {
		tooMany[i] = "u" + strconv.Itoa(i)
	}
	nan := float32(math.NaN())
	for _, tc := range []struct {
		name  string
		req   *recsysv1.BatchRecommendRequest
		field string
	}{
		{"neither users nor segment", &recsysv1.BatchRecommendRequest{Count: 3}, "user_ids"},
		{"both", &recsysv1.BatchRecommendRequest{UserIds: []string{"u"}, Segment: &recsysv1.SegmentSelector{}, Count: 3}, "segment"},
		{"too many users", &recsysv1.BatchRecommendRequest{UserIds: tooMany, Count: 3}, "user_ids"},
		{"empty user id", &recsysv1.BatchRecommendRequest{UserIds: []string{"u", ""}, Count: 3}, "user_ids[1]"},
		{"negative count", &recsysv1.BatchRecommendRequest{UserIds: []string{"u"}, Count: -1}, "count"},
		{"count over 500", &recsysv1.BatchRecommendRequest{UserIds: []string{"u"}, Count: 501}, "count"},
		{"NaN min score", &recsysv1.BatchRecommendRequest{UserIds: []string{"u"}, Count: 3, MinScore: &nan}, "min_score"},
		{"negative window", &recsysv1.BatchRecommendRequest{UserIds: []string{"u"}, Count: 3, DedupWindow: durationpb.New(-time.Hour)}, "dedup_window"},
		{"window past the retention", &recsysv1.BatchRecommendRequest{UserIds: []string{"u"}, Count: 3, DedupWindow: durationpb.New(31 * 24 * time.Hour)}, "dedup_window"},
		{"negative cap", &recsysv1.BatchRecommendRequest{UserIds: []string{"u"}, Count: 3, MaxPerCategory: -1}, "max_per_category"},
		{"unknown lifecycle", &recsysv1.BatchRecommendRequest{Segment: &recsysv1.SegmentSelector{Lifecycle: 9}, Count: 3}, "segment.lifecycle"},
		{"negative spend", &recsysv1.BatchRecommendRequest{Segment: &recsysv1.SegmentSelector{MinSpend: -1}, Count: 3}, "segment.min_spend"},
		{"infinite frequency", &recsysv1.BatchRecommendRequest{Segment: &recsysv1.SegmentSelector{MinPurchasesPer_30D: math.Inf(1)}, Count: 3}, "segment.min_purchases_per_30d"},
		{"too many segment users", &recsysv1.BatchRecommendRequest{Segment: &recsysv1.SegmentSelector{MaxUsers: 1_000_001}, Count: 3}, "segment.max_users"},
		{"bad filter", &recsysv1.BatchRecommendRequest{UserIds: []string{"u"}, Count: 3, Filter: &recsysv1.Filter{MinPrice: proto.Float64(-1)}}, "filter.min_price"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.batch(t, tc.req)
			if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), tc.field+":") {
				t.Errorf("got %v (%d messages), want InvalidArgument naming %s", err, len(got), tc.field)
			}
		})
	}
	// A cancelled call ends with Canceled, whichever side sees it first.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stream, err := e.rec.BatchRecommend(ctx, &recsysv1.BatchRecommendRequest{UserIds: []string{"u"}, Count: 3})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Canceled {
		t.Errorf("cancelled call: got %v, want Canceled", err)
	}
}
