package server_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

func (e *env) rank(t *testing.T, req *recsysv1.RankItemsRequest) *recsysv1.RankItemsResponse {
	t.Helper()
	res, err := e.rec.RankItems(context.Background(), req)
	if err != nil {
		t.Fatalf("RankItems(%v): %v", req, err)
	}
	return res
}

// RankItems returns only the given items, the ones the model knows ordered
// by the score Recommend gives them, the rest after them; hard rules and the
// filter drop items with the rule named.
func TestRankItems(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	e := newEnvWith(t, envOptions{model: true, clock: &clock{t: now}})
	ctx := context.Background()
	items := plantedCatalog(now)
	items = with(items, "b5", func(it *recsysv1.Item) { it.Available = false })
	items = with(items, "b6", func(it *recsysv1.Item) { it.MemberOnly = true })
	items = with(items, "c7", func(it *recsysv1.Item) { it.ValidUntil = timestamppb.New(now.Add(-time.Hour)) })
	e.upsert(t, items...)
	if _, err := e.catalog.SetBlocklist(ctx, &recsysv1.SetBlocklistRequest{ItemIds: []string{"c8"}}); err != nil {
		t.Fatal(err)
	}
	e.syncRules(t)
	// The user likes a-items, somewhat b-items; bought a9 (RankItems keeps
	// bought items: the caller chose them).
	e.record(t, ev("u", "a0", view, now.Add(-time.Hour)), ev("u", "a1", view, now.Add(-time.Hour)),
		ev("u", "b0", view, now.Add(-2*time.Hour)), ev("u", "a9", purchase, now.Add(-time.Hour)))

	// What Recommend scores these items at, with nothing excluded.
	full := e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 30,
		Filter: &recsysv1.Filter{IncludePurchased: true, Availability: recsysv1.Availability_AVAILABILITY_INCLUDE_UNAVAILABLE}})
	recScore := map[string]float32{}
	for _, it := range full.GetItems() {
		recScore[it.GetItemId()] = it.GetScore()
	}

	candidates := []string{"new-1", "c1", "b2", "a9", "b5", "a3", "b6", "c7", "c8", "new-2", "b1", "a5"}
	res := e.rank(t, &recsysv1.RankItemsRequest{UserId: "u", ItemIds: candidates})
	got := ids(res.GetItems())
	wantDropped := []*recsysv1.DroppedItem{
		{ItemId: "b5", Reason: recsysv1.DropReason_DROP_REASON_UNAVAILABLE},
		{ItemId: "b6", Reason: recsysv1.DropReason_DROP_REASON_MEMBER_ONLY},
		{ItemId: "c7", Reason: recsysv1.DropReason_DROP_REASON_OUT_OF_WINDOW},
		{ItemId: "c8", Reason: recsysv1.DropReason_DROP_REASON_BLOCKED},
	}
	if d := res.GetDropped(); len(d) != len(wantDropped) || !slices.EqualFunc(d, wantDropped, func(a, b *recsysv1.DroppedItem) bool {
		return a.GetItemId() == b.GetItemId() && a.GetReason() == b.GetReason()
	}) {
		t.Errorf("dropped %v, want %v", d, wantDropped)
	}
	if res.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED || res.GetModelVersion() == "" || res.GetRecommendationId() == "" {
		t.Errorf("source %v, model %q, id %q", res.GetSource(), res.GetModelVersion(), res.GetRecommendationId())
	}
	// Known items first, by score: a-items, then b-items, then c-items.
	known := []string{"a9", "a5", "a3", "b2", "b1", "c1"} // within a cluster a higher index scores higher
	if want := append(slices.Clone(known), "new-1", "new-2"); !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	for i, it := range res.GetItems()[:len(known)] {
		if w, ok := recScore[it.GetItemId()]; !ok || math.Abs(float64(it.GetScore()-w)) > 1e-5*math.Max(1, math.Abs(float64(w))) {
			t.Errorf("%s scored %v, Recommend scores it %v (found %v)", it.GetItemId(), it.GetScore(), w, ok)
		}
		if it.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED || it.GetReason().GetKind() != recsysv1.ReasonKind_REASON_KIND_PROFILE_ITEM {
			t.Errorf("item %d %s: source %v, reason %v", i, it.GetItemId(), it.GetSource(), it.GetReason())
		}
	}
	for _, it := range res.GetItems()[len(known):] {
		if it.GetSource() != recsysv1.Source_SOURCE_CALLER_ORDER {
			t.Errorf("unknown item %s: source %v, want caller order", it.GetItemId(), it.GetSource())
		}
	}

	t.Run("filter drops with the rule", func(t *testing.T) {
		res := e.rank(t, &recsysv1.RankItemsRequest{UserId: "u", ItemIds: []string{"a1", "b1", "new-1"},
			Filter: &recsysv1.Filter{IncludeCategories: []string{"cat-b"}}})
		if got := ids(res.GetItems()); !slices.Equal(got, []string{"b1"}) {
			t.Errorf("items %v, want [b1]", got)
		}
		if d := res.GetDropped(); len(d) != 2 || d[0].GetReason() != recsysv1.DropReason_DROP_REASON_FILTERED || d[1].GetItemId() != "new-1" {
			t.Errorf("dropped %v, want a1 and new-1 filtered", d)
		}
	})
	t.Run("cold user keeps the caller's order", func(t *testing.T) {
		res := e.rank(t, &recsysv1.RankItemsRequest{UserId: "nobody", ItemIds: []string{"c1", "a1", "b1"}})
		if got := ids(res.GetItems()); !slices.Equal(got, []string{"c1", "a1", "b1"}) {
			t.Errorf("cold user: %v, want the caller's order", got)
		}
		if res.GetSource() != recsysv1.Source_SOURCE_CALLER_ORDER {
			t.Errorf("cold user: source %v", res.GetSource())
		}
	})
	t.Run("context item counts as a view", func(t *testing.T) {
		res := e.rank(t, &recsysv1.RankItemsRequest{UserId: "nobody", ItemIds: []string{"a1", "c1", "c2"},
			Context: &recsysv1.RequestContext{ContextItemId: "c0"}})
		if got := ids(res.GetItems()); got[0] != "c2" || got[1] != "c1" {
			t.Errorf("a page about c0: %v, want c-items first", got)
		}
	})
}

func TestRankItemsInvalid(t *testing.T) {
	e := newEnv(t, true)
	many := make([]string, 1001)
	for i := range many {
		many[i] = fmt.Sprint("i", i)
	}
	for _, tc := range []struct {
		name  string
		req   *recsysv1.RankItemsRequest
		field string
	}{
		{"no user", &recsysv1.RankItemsRequest{ItemIds: []string{"a1"}}, "user_id"},
		{"no items", &recsysv1.RankItemsRequest{UserId: "u"}, "item_ids"},
		{"1,001 items", &recsysv1.RankItemsRequest{UserId: "u", ItemIds: many}, "item_ids"},
		{"duplicate", &recsysv1.RankItemsRequest{UserId: "u", ItemIds: []string{"a1", "b1", "a1"}}, "item_ids[2]"},
		{"empty id", &recsysv1.RankItemsRequest{UserId: "u", ItemIds: []string{"a1", ""}}, "item_ids[1]"},
		{"bad order", &recsysv1.RankItemsRequest{UserId: "u", ItemIds: []string{"a1"}, UnknownOrder: 9}, "unknown_order"},
		{"bad filter", &recsysv1.RankItemsRequest{UserId: "u", ItemIds: []string{"a1"}, Filter: &recsysv1.Filter{MinPrice: ptr(-1.0)}}, "filter.min_price"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.rec.RankItems(context.Background(), tc.req)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.field) {
				t.Errorf("got %v, want InvalidArgument naming %s", err, tc.field)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
