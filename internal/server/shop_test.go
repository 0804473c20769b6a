package server_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/redistest"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

const impression = recsysv1.EventType_EVENT_TYPE_IMPRESSION

// plantedCatalog describes the planted model's items: category "cat-<cluster>",
// price 10 + the index within the cluster (a0 costs 10, a9 19), available,
// created a year ago.
func plantedCatalog(now time.Time) []*recsysv1.Item {
	var out []*recsysv1.Item
	for _, c := range []string{"a", "b", "c"} {
		for i := range 10 {
			out = append(out, &recsysv1.Item{
				ItemId: c + strconv.Itoa(i), Category: "cat-" + c, Price: float64(10 + i), Available: true,
				CreatedAt: timestamppb.New(now.Add(-365 * 24 * time.Hour)),
			})
		}
	}
	return out
}

// upsert stores items and brings this server's catalog cache up to date.
func (e *env) upsert(t *testing.T, items ...*recsysv1.Item) {
	t.Helper()
	if _, err := e.catalog.UpsertItems(context.Background(), &recsysv1.UpsertItemsRequest{Items: items}); err != nil {
		t.Fatalf("UpsertItems: %v", err)
	}
	if err := e.cache.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// syncRules brings this server's copy of the shop rules up to date.
func (e *env) syncRules(t *testing.T) {
	t.Helper()
	if err := e.rules.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (e *env) recommend(t *testing.T, req *recsysv1.RecommendRequest) *recsysv1.RecommendResponse {
	t.Helper()
	res, err := e.rec.Recommend(context.Background(), req)
	if err != nil {
		t.Fatalf("Recommend(%v): %v", req, err)
	}
	return res
}

// with returns a copy of the planted item id with f applied.
func with(items []*recsysv1.Item, id string, f func(*recsysv1.Item)) []*recsysv1.Item {
	for i, it := range items {
		if it.GetItemId() == id {
			c := proto.Clone(it).(*recsysv1.Item)
			f(c)
			items[i] = c
		}
	}
	return items
}

func TestFilters(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	// Every case starts from this shop: the user viewed a0 and bought a9;
	// a5 is unavailable, a6 for members only, a7's sale ended exactly now,
	// a8's begins exactly now, a3's begins in a millisecond, a4's ends in a
	// millisecond, c3 has no price.
	shop := func() []*recsysv1.Item {
		items := plantedCatalog(now)
		items = with(items, "a5", func(it *recsysv1.Item) { it.Available = false })
		items = with(items, "a6", func(it *recsysv1.Item) { it.MemberOnly = true })
		items = with(items, "a7", func(it *recsysv1.Item) {
			it.ValidFrom, it.ValidUntil = timestamppb.New(now.Add(-time.Hour)), timestamppb.New(now)
		})
		items = with(items, "a8", func(it *recsysv1.Item) {
			it.ValidFrom, it.ValidUntil = timestamppb.New(now), timestamppb.New(now.Add(time.Hour))
		})
		items = with(items, "a3", func(it *recsysv1.Item) { it.ValidFrom = timestamppb.New(now.Add(ms)) })
		items = with(items, "a4", func(it *recsysv1.Item) { it.ValidUntil = timestamppb.New(now.Add(ms)) })
		items = with(items, "c3", func(it *recsysv1.Item) { it.Price = 0 })
		return items
	}
	price := func(id string) float64 { n, _ := strconv.Atoi(id[1:]); return float64(10 + n) }
	tests := []struct {
		name     string
		filter   *recsysv1.Filter
		blockIDs []string
		blockCat []string
		mustHave []string
		mustNot  []string
		only     func(id string) bool // every returned item satisfies it
	}{
		{name: "defaults: hard rules, purchased and history out, window bounds",
			mustHave: []string{"a1", "a2", "a4", "a8", "b0", "c9"},
			mustNot:  []string{"a0", "a9", "a5", "a6", "a7", "a3"}},
		{name: "include unavailable", filter: &recsysv1.Filter{Availability: recsysv1.Availability_AVAILABILITY_INCLUDE_UNAVAILABLE},
			mustHave: []string{"a5"}, mustNot: []string{"a6", "a7", "a3", "a9"}},
		{name: "available only is the default", filter: &recsysv1.Filter{Availability: recsysv1.Availability_AVAILABILITY_AVAILABLE_ONLY},
			mustHave: []string{"a1"}, mustNot: []string{"a5"}},
		{name: "member tier admits member-only items", filter: &recsysv1.Filter{MemberTier: "gold"},
			mustHave: []string{"a6"}, mustNot: []string{"a5", "a7"}},
		{name: "include purchased", filter: &recsysv1.Filter{IncludePurchased: true},
			mustHave: []string{"a9"}, mustNot: []string{"a0"}},
		{name: "include categories", filter: &recsysv1.Filter{IncludeCategories: []string{"cat-b"}},
			mustHave: []string{"b0", "b9"}, only: func(id string) bool { return id[0] == 'b' }},
		{name: "exclude categories", filter: &recsysv1.Filter{ExcludeCategories: []string{"cat-a", "cat-c"}},
			mustHave: []string{"b0", "b9"}, only: func(id string) bool { return id[0] == 'b' }},
		{name: "price range is inclusive, unknown prices out",
			filter:   &recsysv1.Filter{MinPrice: proto.Float64(12), MaxPrice: proto.Float64(14)},
			mustHave: []string{"b2", "b4", "c2", "c4", "a2", "a4"}, mustNot: []string{"c3", "a3"},
			only: func(id string) bool { return price(id) >= 12 && price(id) <= 14 }},
		{name: "minimum price only", filter: &recsysv1.Filter{MinPrice: proto.Float64(18)},
			mustHave: []string{"b8", "b9", "c8", "a8"}, only: func(id string) bool { return price(id) >= 18 }},
		{name: "maximum price only", filter: &recsysv1.Filter{MaxPrice: proto.Float64(10.5)},
			mustHave: []string{"b0", "c0"}, only: func(id string) bool { return price(id) <= 10.5 }},
		{name: "blocklist beats every filter", blockIDs: []string{"b1", "a8"}, blockCat: []string{"cat-c"},
			filter:   &recsysv1.Filter{Availability: recsysv1.Availability_AVAILABILITY_INCLUDE_UNAVAILABLE, MemberTier: "x"},
			mustHave: []string{"b0", "a5"}, mustNot: []string{"b1", "a8"}, only: func(id string) bool { return id[0] != 'c' }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvWith(t, envOptions{model: true, clock: &clock{t: now}})
			ctx := context.Background()
			e.upsert(t, shop()...)
			e.record(t, ev("u", "a0", view, now.Add(-time.Hour)), ev("u", "a9", purchase, now.Add(-time.Hour)))
			if tc.blockIDs != nil || tc.blockCat != nil {
				if _, err := e.catalog.SetBlocklist(ctx, &recsysv1.SetBlocklistRequest{ItemIds: tc.blockIDs, Categories: tc.blockCat}); err != nil {
					t.Fatal(err)
				}
				e.syncRules(t)
			}
			res := e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 30, Filter: tc.filter})
			got := ids(res.GetItems())
			for _, id := range tc.mustHave {
				if !slices.Contains(got, id) {
					t.Errorf("%s missing from %v", id, got)
				}
			}
			for _, id := range tc.mustNot {
				if slices.Contains(got, id) {
					t.Errorf("%s returned in %v", id, got)
				}
			}
			for _, id := range got {
				if tc.only != nil && !tc.only(id) {
					t.Errorf("%s does not pass the filter (%v)", id, got)
				}
			}
			if res.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED {
				t.Errorf("source %v, want personalized", res.GetSource())
			}
			// Nothing else passes, so the answer is everything allowed and
			// says it is short of 30.
			if !res.GetPartial() {
				t.Errorf("%d items, partial unset", len(got))
			}
		})
	}
}

func TestCatalogItemFieldsRoundTrip(t *testing.T) {
	e := newEnv(t, false)
	from := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	in := &recsysv1.Item{ItemId: "x", Category: "c", Price: 3, Available: true, MemberOnly: true,
		CreatedAt: timestamppb.New(from.Add(-time.Hour)), ValidFrom: timestamppb.New(from), ValidUntil: timestamppb.New(from.Add(time.Hour))}
	e.upsert(t, in)
	res, err := e.catalog.GetItems(context.Background(), &recsysv1.GetItemsRequest{ItemIds: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetItems()) != 1 || !proto.Equal(res.GetItems()[0], in) {
		t.Errorf("GetItems: got %v, want %v", res.GetItems(), in)
	}
}

// When filters leave too few personalized items, popular items passing the
// same filters fill the answer, and the hard rules stay.
func TestFilterFallsBackToPopular(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	now := e.clock.Now()
	e.upsert(t, plantedCatalog(now)...)
	e.upsert(t,
		&recsysv1.Item{ItemId: "z1", Category: "cat-z", Price: 5, Available: true},
		&recsysv1.Item{ItemId: "z2", Category: "cat-z", Price: 5, Available: true},
		&recsysv1.Item{ItemId: "z3", Category: "cat-z", Price: 5, Available: false},
		&recsysv1.Item{ItemId: "z4", Category: "cat-z", Price: 5, Available: true})
	// z3 is the most popular, then z1, z2, z4 (blocked below).
	e.record(t, ev("p", "z3", purchase, now), ev("q", "z3", purchase, now), ev("p", "z1", purchase, now),
		ev("q", "z2", cart, now), ev("r", "z4", view, now), ev("u", "a0", view, now))
	if _, err := e.catalog.AddToBlocklist(ctx, &recsysv1.AddToBlocklistRequest{ItemIds: []string{"z4"}}); err != nil {
		t.Fatal(err)
	}
	e.syncRules(t)
	if err := e.engine.Popular().Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	res := e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 5, Filter: &recsysv1.Filter{IncludeCategories: []string{"cat-z"}}})
	if got := ids(res.GetItems()); !slices.Equal(got, []string{"z1", "z2"}) {
		t.Fatalf("got %v, want [z1 z2]: popular cat-z items, without the unavailable z3 and the blocked z4", got)
	}
	if res.GetSource() != recsysv1.Source_SOURCE_POPULAR || !res.GetPartial() {
		t.Errorf("source %v partial %v, want popular and partial", res.GetSource(), res.GetPartial())
	}
	for _, it := range res.GetItems() {
		if it.GetSource() != recsysv1.Source_SOURCE_POPULAR || it.GetReason().GetKind() != recsysv1.ReasonKind_REASON_KIND_POPULAR || it.GetScore() != 0 {
			t.Errorf("%s: source %v reason %v score %v, want a popular filler with score 0", it.GetItemId(), it.GetSource(), it.GetReason(), it.GetScore())
		}
	}

	// Personalized items first, then the popular fill under the same filter.
	res = e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 12, Filter: &recsysv1.Filter{MaxPrice: proto.Float64(10.5)}})
	got := ids(res.GetItems())
	if len(got) != 4 || got[0] != "b0" && got[0] != "c0" || !slices.Contains(got, "z1") || !slices.Contains(got, "z2") {
		t.Errorf("got %v, want b0, c0 (personalized) then z1, z2 (popular)", got)
	}
	for i, it := range res.GetItems() {
		want := recsysv1.Source_SOURCE_PERSONALIZED
		if i >= 2 {
			want = recsysv1.Source_SOURCE_POPULAR
		}
		if it.GetSource() != want {
			t.Errorf("item %d %s: source %v, want %v", i, it.GetItemId(), it.GetSource(), want)
		}
	}
	if res.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED || !res.GetPartial() {
		t.Errorf("source %v partial %v", res.GetSource(), res.GetPartial())
	}

	// A filter nothing passes: an empty answer that says so.
	res = e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 3, Filter: &recsysv1.Filter{IncludeCategories: []string{"none"}}})
	if len(res.GetItems()) != 0 || !res.GetPartial() {
		t.Errorf("got %v partial %v, want nothing, partial", ids(res.GetItems()), res.GetPartial())
	}

	// SimilarItems: cosine neighbours under the filter, then popular.
	sim, err := e.rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: "a0", Count: 12,
		Filter: &recsysv1.Filter{ExcludeCategories: []string{"cat-a"}, MaxPrice: proto.Float64(11)}})
	if err != nil {
		t.Fatal(err)
	}
	got = ids(sim.GetItems())
	if len(got) != 6 || !sim.GetPartial() || sim.GetSource() != recsysv1.Source_SOURCE_SIMILAR {
		t.Errorf("similar: got %v (%v, partial %v), want b0 b1 c0 c1 similar then z1 z2 popular", got, sim.GetSource(), sim.GetPartial())
	}
	for _, it := range sim.GetItems() {
		r := it.GetReason()
		if it.GetSource() == recsysv1.Source_SOURCE_SIMILAR && (r.GetKind() != recsysv1.ReasonKind_REASON_KIND_SIMILAR || r.GetItemId() != "a0") {
			t.Errorf("similar item %s has reason %v", it.GetItemId(), r)
		}
		if strings.HasPrefix(it.GetItemId(), "a") || it.GetItemId() == "z4" || it.GetItemId() == "z3" {
			t.Errorf("similar returned %s", it.GetItemId())
		}
	}
}

// A blocklist change made through one server reaches another server on the
// same Redis within a second.
func TestBlocklistReachesEveryServerWithinASecond(t *testing.T) {
	a := newEnv(t, true)
	b := newEnvWith(t, envOptions{model: true, prefix: a.prefix, clock: a.clock})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.rules.Run(ctx, 250*time.Millisecond) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("rules Run: %v", err)
		}
	})
	now := a.clock.Now()
	a.record(t, ev("u", "a0", view, now))
	req := &recsysv1.RecommendRequest{UserId: "u", Count: 3}
	if got := ids(b.recommend(t, req).GetItems()); got[0] != "a9" {
		t.Fatalf("before: %v, want a9 first", got)
	}
	within := func(what string, cond func([]string) bool) {
		t.Helper()
		start := time.Now()
		for {
			got := ids(b.recommend(t, req).GetItems())
			if cond(got) {
				t.Logf("%s visible on the second server after %v", what, time.Since(start).Round(time.Millisecond))
				return
			}
			if time.Since(start) > time.Second {
				t.Fatalf("%s not visible on the second server within a second: %v", what, got)
			}
			time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
		}
	}
	sum, err := a.catalog.AddToBlocklist(context.Background(), &recsysv1.AddToBlocklistRequest{ItemIds: []string{"a9", "a8"}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.GetBlocklist().GetItemCount() != 2 {
		t.Errorf("summary %v", sum)
	}
	within("blocking", func(got []string) bool { return !slices.Contains(got, "a9") && !slices.Contains(got, "a8") })
	if _, err := a.catalog.RemoveFromBlocklist(context.Background(), &recsysv1.RemoveFromBlocklistRequest{ItemIds: []string{"a9"}}); err != nil {
		t.Fatal(err)
	}
	within("unblocking", func(got []string) bool { return got[0] == "a9" && !slices.Contains(got, "a8") })

	bl, err := b.catalog.GetBlocklist(context.Background(), &recsysv1.GetBlocklistRequest{})
	if err != nil || !slices.Equal(bl.GetItemIds(), []string{"a8"}) || len(bl.GetCategories()) != 0 || bl.GetVersion() != 2 {
		t.Errorf("GetBlocklist: %v %v", bl, err)
	}
}

// A bought item of a repeatable category returns exactly when its interval
// has passed; other bought items never do.
func TestRepeatableCategory(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	now := e.clock.Now()
	e.upsert(t, plantedCatalog(now)...)
	const month = 30 * 24 * time.Hour
	if _, err := e.catalog.UpsertCategories(ctx, &recsysv1.UpsertCategoriesRequest{Categories: []*recsysv1.Category{
		{Name: "cat-a", RepeatableAfter: durationpb.New(month)}, {Name: "cat-b"},
	}}); err != nil {
		t.Fatal(err)
	}
	e.syncRules(t)
	list, err := e.catalog.ListCategories(ctx, &recsysv1.ListCategoriesRequest{})
	if err != nil || len(list.GetCategories()) != 2 || list.GetCategories()[0].GetRepeatableAfter().AsDuration() != month ||
		list.GetCategories()[1].GetRepeatableAfter() != nil {
		t.Fatalf("ListCategories: %v %v", list, err)
	}
	e.record(t, ev("u", "a3", purchase, now), ev("u", "b3", purchase, now))
	for _, tc := range []struct {
		after time.Duration
		want  bool
	}{
		{0, false},
		{month - time.Millisecond, false},
		{month, true},
		{2 * month, true},
	} {
		e.clock.Advance(now.Add(tc.after).Sub(e.clock.Now()))
		got := ids(e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 30}).GetItems())
		if slices.Contains(got, "a3") != tc.want {
			t.Errorf("%v after the purchase: a3 returned = %v, want %v (%v)", tc.after, !tc.want, tc.want, got)
		}
		if slices.Contains(got, "b3") {
			t.Errorf("%v after the purchase: b3 (not repeatable) returned", tc.after)
		}
	}
}

func TestRotationAfterImpressions(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	newRotating := func(t *testing.T, keepHistory bool) *env {
		return newEnvWith(t, envOptions{model: true, clock: &clock{t: now}, engine: func(c *recommend.Config) {
			c.RotateAfter, c.RotateWindow, c.KeepHistory = 3, 24*time.Hour, keepHistory
		}})
	}
	top := func(t *testing.T, e *env, n int) []string {
		t.Helper()
		return ids(e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: int32(n)}).GetItems())
	}
	t.Run("rotates after N within the window", func(t *testing.T) {
		e := newRotating(t, false)
		e.record(t, ev("u", "a0", view, now.Add(-time.Hour)))
		if got := top(t, e, 3); !slices.Equal(got, []string{"a9", "a8", "a7"}) {
			t.Fatalf("before impressions %v", got)
		}
		// a9 shown three times, a8 twice, within the last day.
		e.record(t, ev("u", "a9", impression, now.Add(-20*time.Hour)), ev("u", "a9", impression, now.Add(-time.Hour)),
			ev("u", "a9", impression, now), ev("u", "a8", impression, now), ev("u", "a8", impression, now))
		if got := top(t, e, 3); !slices.Equal(got, []string{"a8", "a7", "a6"}) {
			t.Errorf("after 3 impressions of a9: %v, want a8 a7 a6", got)
		}
		// Rotated down, not out: it comes after everything else.
		all := e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 30})
		if got := ids(all.GetItems()); len(got) != 29 || got[28] != "a9" {
			t.Errorf("full answer %v, want a9 last", got)
		}
		// The oldest impression leaves the window: only 2 remain.
		e.clock.Advance(4*time.Hour + time.Millisecond)
		if got := top(t, e, 1); !slices.Equal(got, []string{"a9"}) {
			t.Errorf("after the window: %v, want a9 back first", got)
		}
		// Impressions are not interest: the profile did not change.
		p, err := e.events.GetProfile(context.Background(), &recsysv1.GetProfileRequest{UserId: "u"})
		if err != nil || len(p.GetProfile().GetItems()) != 1 {
			t.Errorf("profile after impressions: %v %v, want only a0", p, err)
		}
	})
	t.Run("a click resets the count", func(t *testing.T) {
		e := newRotating(t, true) // so the clicked item may be recommended again
		e.record(t, ev("u", "a0", view, now.Add(-time.Hour)),
			ev("u", "a9", impression, now.Add(-3*time.Minute)), ev("u", "a9", impression, now.Add(-2*time.Minute)),
			ev("u", "a9", impression, now.Add(-time.Minute)))
		if got := top(t, e, 1); got[0] == "a9" {
			t.Fatalf("a9 not rotated: %v", got)
		}
		e.record(t, ev("u", "a9", view, now))
		if got := top(t, e, 1); got[0] != "a9" {
			t.Errorf("after a click on a9: %v, want a9 first again", got)
		}
	})
	t.Run("impressions alone are a cold profile", func(t *testing.T) {
		e := newRotating(t, false)
		e.record(t, ev("x", "b5", purchase, now), ev("u", "a1", impression, now))
		if err := e.engine.Popular().Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		res := e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 1})
		if res.GetSource() != recsysv1.Source_SOURCE_POPULAR || ids(res.GetItems())[0] != "b5" {
			t.Errorf("got %v %v, want popular b5", res.GetSource(), ids(res.GetItems()))
		}
	})
}

func TestExplorationShare(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	e := newEnvWith(t, envOptions{model: true, clock: &clock{t: now}, engine: func(c *recommend.Config) { c.ExploreShare = 0.1 }})
	ctx := context.Background()
	day := 24 * time.Hour
	e.upsert(t, plantedCatalog(now)...)
	// New arrivals, unknown to the model: n1..n4 in cat-a (n4 newest), n5 in
	// cat-b; old1 is too old, hot1 too popular.
	e.upsert(t,
		&recsysv1.Item{ItemId: "n1", Category: "cat-a", Available: true, CreatedAt: timestamppb.New(now.Add(-4 * day))},
		&recsysv1.Item{ItemId: "n2", Category: "cat-a", Available: true, CreatedAt: timestamppb.New(now.Add(-3 * day))},
		&recsysv1.Item{ItemId: "n3", Category: "cat-a", Available: false, CreatedAt: timestamppb.New(now.Add(-2 * day))},
		&recsysv1.Item{ItemId: "n4", Category: "cat-a", Available: true, CreatedAt: timestamppb.New(now.Add(-day))},
		&recsysv1.Item{ItemId: "n5", Category: "cat-b", Available: true, CreatedAt: timestamppb.New(now.Add(-day))},
		&recsysv1.Item{ItemId: "old1", Category: "cat-a", Available: true, CreatedAt: timestamppb.New(now.Add(-30 * day))},
		&recsysv1.Item{ItemId: "hot1", Category: "cat-a", Available: true, CreatedAt: timestamppb.New(now.Add(-time.Hour))})
	for i := range 3 {
		e.record(t, ev("fan"+strconv.Itoa(i), "hot1", purchase, now)) // popularity 15 > 10
	}
	// The user's affinity: mostly cat-a, some cat-b.
	e.record(t, ev("u", "a0", cart, now), ev("u", "a1", view, now), ev("u", "b0", view, now))
	if err := e.arrivals.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.arrivals.Len(); n != 5 {
		t.Fatalf("%d new arrivals, want 5 (n1..n5)", n)
	}
	tests := []struct {
		count  int32
		filter *recsysv1.Filter
		want   []string // exploration picks in order
		at     []int    // their positions
	}{
		{count: 9, want: nil},
		{count: 10, want: []string{"n4"}, at: []int{5}},
		{count: 20, want: []string{"n4", "n5"}, at: []int{6, 13}},
		{count: 30, want: []string{"n4", "n5", "n2"}, at: []int{7, 15, 22}},
		{count: 20, filter: &recsysv1.Filter{ExcludeCategories: []string{"cat-b"}}, want: []string{"n4", "n2"}, at: []int{6, 13}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("count=%d/filter=%v", tc.count, tc.filter), func(t *testing.T) {
			res := e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: tc.count, Filter: tc.filter})
			var got []string
			var at []int
			for i, it := range res.GetItems() {
				if it.GetSource() != recsysv1.Source_SOURCE_EXPLORATION {
					continue
				}
				got, at = append(got, it.GetItemId()), append(at, i)
				if r := it.GetReason(); r.GetKind() != recsysv1.ReasonKind_REASON_KIND_NEW_ARRIVAL || r.GetCategory() != "cat-"+map[string]string{"n4": "a", "n2": "a", "n5": "b"}[it.GetItemId()] {
					t.Errorf("%s: reason %v", it.GetItemId(), r)
				}
			}
			if !slices.Equal(got, tc.want) || !slices.Equal(at, tc.at) {
				t.Errorf("exploration %v at %v, want %v at %v (answer %v)", got, at, tc.want, tc.at, ids(res.GetItems()))
			}
			if n := len(res.GetItems()); n != int(tc.count) {
				t.Errorf("%d items, want %d", n, tc.count)
			}
			if share := float64(len(got)) / float64(tc.count); share > 0.1+1e-9 {
				t.Errorf("exploration share %v > 0.1", share)
			}
		})
	}
}

func TestDiversityCap(t *testing.T) {
	e := newEnvWith(t, envOptions{model: true, engine: func(c *recommend.Config) { c.MaxPerCategory = 3 }})
	now := e.clock.Now()
	e.upsert(t, plantedCatalog(now)...)
	e.record(t, ev("u", "a0", cart, now), ev("u", "b0", view, now))
	perCategory := func(items []*recsysv1.ScoredItem) map[byte]int {
		n := map[byte]int{}
		for _, it := range items {
			n[it.GetItemId()[0]]++
		}
		return n
	}
	uncapped := ids(e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 6, MaxPerCategory: 100}).GetItems())
	if c := cluster(e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 6, MaxPerCategory: 100}).GetItems()); c != "aaaaaa" {
		t.Fatalf("uncapped %v, want six a-items (the premise)", uncapped)
	}
	for _, tc := range []struct {
		name  string
		count int32
		cap   int32
		want  int // the cap that must hold over the first items
		held  int // how many first items must respect it
	}{
		{"request cap 2", 6, 2, 2, 6},
		{"request cap 1", 3, 1, 1, 3},
		{"server default 3", 9, 0, 3, 9},
		{"soft when short", 10, 2, 2, 6}, // 3 categories × 2, then the best over the cap
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: tc.count, MaxPerCategory: tc.cap})
			items := res.GetItems()
			if len(items) != int(tc.count) || res.GetPartial() {
				t.Fatalf("%d items (partial %v), want %d", len(items), res.GetPartial(), tc.count)
			}
			for c, n := range perCategory(items[:tc.held]) {
				if n > tc.want {
					t.Errorf("%d items of cluster %c in %v, cap %d", n, c, ids(items), tc.want)
				}
			}
			// Within the cap the order is the model's.
			for i := 1; i < tc.held; i++ {
				if items[i].GetScore() > items[i-1].GetScore() {
					t.Errorf("not in score order: %v", ids(items))
				}
			}
			if ids(items)[0] != uncapped[0] {
				t.Errorf("first item %s, want the best %s", ids(items)[0], uncapped[0])
			}
		})
	}
}

// The reason of every personalized item names the profile item with the
// largest term of score_i = Σ_j c_j yᵢᵀA⁻¹y_j, checked here with A built
// and inverted independently from the model and the profile's weights.
func TestExplanationIsTheExactArgmax(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	now := e.clock.Now()
	e.record(t,
		ev("u", "a1", view, now.Add(-48*time.Hour)), ev("u", "a1", view, now.Add(-47*time.Hour)),
		ev("u", "a2", cart, now.Add(-time.Hour)), ev("u", "a2", view, now.Add(-2*time.Hour)),
		ev("u", "b4", view, now), ev("u", "b4", cart, now), ev("u", "b5", view, now),
		ev("u", "c7", view, now.Add(-240*time.Hour)))
	res := e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 20})
	prof, err := e.events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: "u"})
	if err != nil {
		t.Fatal(err)
	}
	m := e.engine.Model()
	info := m.Info()
	f := m.Factors()
	vec := func(id string) *mat.VecDense {
		r, ok := m.Index(id)
		if !ok {
			t.Fatalf("%s unknown to the model", id)
		}
		v := mat.NewVecDense(f, nil)
		for d, y := range m.Vector(r) {
			v.SetVec(d, float64(y))
		}
		return v
	}
	// A = YᵀY + Σ_j (c_j − 1) y_j y_jᵀ + λ(n) I over the whole catalogue.
	a := mat.NewDense(f, f, nil)
	for i := range m.NumItems() {
		y := vec(m.ItemID(int32(i)))
		a.RankOne(a, 1, y, y)
	}
	profile := prof.GetProfile().GetItems()
	conf := map[string]float64{}
	for _, p := range profile {
		conf[p.GetItemId()] = 1 + info.Hyper.Alpha*p.GetWeight()
		y := vec(p.GetItemId())
		a.RankOne(a, conf[p.GetItemId()]-1, y, y)
	}
	for d := range f {
		a.Set(d, d, a.At(d, d)+info.Hyper.Reg(len(profile)))
	}
	var inv mat.Dense
	if err := inv.Inverse(a); err != nil {
		t.Fatal(err)
	}
	dominant := map[string]recsysv1.EventType{"a1": view, "a2": cart, "b4": cart, "b5": view, "c7": view}
	for _, it := range res.GetItems() {
		r := it.GetReason()
		if it.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED || r.GetKind() != recsysv1.ReasonKind_REASON_KIND_PROFILE_ITEM {
			t.Fatalf("%s: source %v reason %v, want personalized with a profile item", it.GetItemId(), it.GetSource(), r)
		}
		var ainvY mat.VecDense
		ainvY.MulVec(&inv, vec(it.GetItemId()))
		best, bestC, sum := "", math.Inf(-1), 0.0
		for _, p := range profile {
			c := conf[p.GetItemId()] * mat.Dot(&ainvY, vec(p.GetItemId()))
			sum += c
			if c > bestC {
				best, bestC = p.GetItemId(), c
			}
		}
		if r.GetItemId() != best {
			t.Errorf("%s: reason names %s, the exact argmax is %s", it.GetItemId(), r.GetItemId(), best)
		}
		if math.Abs(float64(r.GetContribution())-bestC) > 1e-4*(1+math.Abs(bestC)) {
			t.Errorf("%s: contribution %v, want %v", it.GetItemId(), r.GetContribution(), bestC)
		}
		if math.Abs(sum-float64(it.GetScore())) > 1e-3*(1+math.Abs(sum)) {
			t.Errorf("%s: terms sum to %v, score is %v", it.GetItemId(), sum, it.GetScore())
		}
		if r.GetEventType() != dominant[r.GetItemId()] {
			t.Errorf("%s: because of %v of %s, want %v", it.GetItemId(), r.GetEventType(), r.GetItemId(), dominant[r.GetItemId()])
		}
	}
	// The context item counts as a viewed profile item.
	res = e.recommend(t, &recsysv1.RecommendRequest{UserId: "anon", Count: 2, Context: &recsysv1.RequestContext{ContextItemId: "c4"}})
	for _, it := range res.GetItems() {
		if r := it.GetReason(); r.GetItemId() != "c4" || r.GetEventType() != view {
			t.Errorf("context answer %s: reason %v, want c4 viewed", it.GetItemId(), r)
		}
	}
}

func TestTrending(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 30, 0, 0, time.UTC)
	for _, cold := range []recommend.Source{recommend.SourcePopular, recommend.SourceTrending} {
		t.Run("cold="+cold.String(), func(t *testing.T) {
			e := newEnvWith(t, envOptions{model: true, clock: &clock{t: now}, engine: func(c *recommend.Config) { c.ColdSource = cold }})
			ctx := context.Background()
			// b1 sells steadily all week; c2 surges in the last hour.
			var evs []*recsysv1.Event
			for h := 1; h < 160; h++ {
				evs = append(evs, ev("s"+strconv.Itoa(h), "b1", view, now.Add(-time.Duration(h)*time.Hour+time.Minute)))
			}
			for i := range 8 {
				evs = append(evs, ev("t"+strconv.Itoa(i), "c2", view, now.Add(-time.Duration(i)*time.Minute)))
			}
			for len(evs) > 0 {
				k := min(len(evs), 100)
				e.record(t, evs[:k]...)
				evs = evs[k:]
			}
			if err := e.engine.Popular().Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			if err := e.trending.Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			pop := e.recommend(t, &recsysv1.RecommendRequest{UserId: "new", Count: 1, Context: &recsysv1.RequestContext{Placement: "home"}})
			trend := e.recommend(t, &recsysv1.RecommendRequest{UserId: "new", Count: 2, Context: &recsysv1.RequestContext{Placement: "trending"}})
			if got := ids(trend.GetItems()); trend.GetSource() != recsysv1.Source_SOURCE_TRENDING || len(got) != 2 || got[0] != "c2" {
				t.Errorf("trending placement: %v (%v), want c2 first", got, trend.GetSource())
			}
			first := trend.GetItems()[0]
			if first.GetSource() != recsysv1.Source_SOURCE_TRENDING || first.GetReason().GetKind() != recsysv1.ReasonKind_REASON_KIND_TRENDING || !(first.GetScore() > 1) {
				t.Errorf("trending item %v", first)
			}
			// b1 does not trend; it fills the rest as a popular item.
			if second := trend.GetItems()[1]; second.GetItemId() != "b1" || second.GetSource() != recsysv1.Source_SOURCE_POPULAR {
				t.Errorf("second item %v, want popular b1", second)
			}
			wantCold, wantSrc := "b1", recsysv1.Source_SOURCE_POPULAR
			if cold == recommend.SourceTrending {
				wantCold, wantSrc = "c2", recsysv1.Source_SOURCE_TRENDING
			}
			if got := ids(pop.GetItems()); pop.GetSource() != wantSrc || got[0] != wantCold {
				t.Errorf("cold user: %v (%v), want %s from %v", got, pop.GetSource(), wantCold, wantSrc)
			}
		})
	}
}

func TestOptOut(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	now := e.clock.Now()
	e.record(t, ev("u", "a0", view, now), ev("u", "a1", view, now), ev("u", "c5", purchase, now),
		ev("u", "a2", impression, now))
	// c5 and b5 are the most popular items.
	e.record(t, ev("x", "c5", purchase, now), ev("y", "c5", purchase, now), ev("x", "b5", purchase, now))
	if err := e.engine.Popular().Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if res := e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 3}); res.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED {
		t.Fatalf("before: %v", res.GetSource())
	}
	out, err := e.events.SetOptOut(ctx, &recsysv1.SetOptOutRequest{UserId: "u", OptedOut: true})
	if err != nil || !out.GetOptedOut() {
		t.Fatalf("SetOptOut: %v %v", out, err)
	}
	check := func(stage string) {
		t.Helper()
		if err := e.engine.Popular().Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		res := e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 3})
		got := ids(res.GetItems())
		if res.GetSource() != recsysv1.Source_SOURCE_POPULAR || len(got) == 0 || got[0] != "b5" {
			t.Errorf("%s: %v (%v), want popular b5 first", stage, got, res.GetSource())
		}
		if slices.Contains(got, "c5") || slices.Contains(got, "a5") {
			t.Errorf("%s: bought items returned: %v", stage, got)
		}
		for _, it := range res.GetItems() {
			if it.GetReason().GetKind() == recsysv1.ReasonKind_REASON_KIND_PROFILE_ITEM {
				t.Errorf("%s: personalized reason %v", stage, it.GetReason())
			}
		}
		// A context item does not personalize either.
		res = e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 3, Context: &recsysv1.RequestContext{ContextItemId: "a3"}})
		if res.GetSource() != recsysv1.Source_SOURCE_POPULAR {
			t.Errorf("%s with a context item: %v", stage, res.GetSource())
		}
		p, err := e.events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: "u"})
		if err != nil {
			t.Fatal(err)
		}
		pr := p.GetProfile()
		if !pr.GetOptedOut() || len(pr.GetItems()) != 0 || pr.GetFirstSeen() != nil || pr.GetPurchaseCount() != 0 {
			t.Errorf("%s: profile %v, want only the flag and purchases", stage, pr)
		}
		keys, err := redistest.Keys(ctx, redistest.Client(t), e.prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if strings.Contains(k, "{u}:hist") || strings.Contains(k, "{u}:imp") {
				t.Errorf("%s: key %s kept", stage, k)
			}
		}
	}
	check("after opting out")
	// New events: only the purchase is kept, and it is excluded.
	e.record(t, ev("u", "b0", view, now), ev("u", "a5", purchase, now), ev("u", "b1", impression, now))
	check("after new events")
	p, _ := e.events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: "u"})
	if got := p.GetProfile().GetPurchasedItemIds(); !slices.Contains(got, "a5") || !slices.Contains(got, "c5") {
		t.Errorf("purchases %v, want a5 and c5", got)
	}
	// Opting in again personalizes from new events.
	if _, err := e.events.SetOptOut(ctx, &recsysv1.SetOptOutRequest{UserId: "u", OptedOut: false}); err != nil {
		t.Fatal(err)
	}
	e.record(t, ev("u", "b2", view, now))
	res := e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 3})
	if res.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED || cluster(res.GetItems()) != "bbb" {
		t.Errorf("after opting in: %v (%v), want b-items", ids(res.GetItems()), res.GetSource())
	}
}

func TestShopInvalidRequests(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	now := e.clock.Now()
	rec := func(r *recsysv1.RecommendRequest) func() error {
		return func() error { _, err := e.rec.Recommend(ctx, r); return err }
	}
	withFilter := func(f *recsysv1.Filter) func() error {
		return rec(&recsysv1.RecommendRequest{UserId: "u", Count: 3, Filter: f})
	}
	tooMany := make([]string, 101)
	for i := range tooMany {
		tooMany[i] = "c"
	}
	for _, tc := range []struct {
		name  string
		call  func() error
		field string
	}{
		{"inverted price range", withFilter(&recsysv1.Filter{MinPrice: proto.Float64(5), MaxPrice: proto.Float64(4)}), "filter.max_price"},
		{"negative min price", withFilter(&recsysv1.Filter{MinPrice: proto.Float64(-1)}), "filter.min_price"},
		{"infinite max price", withFilter(&recsysv1.Filter{MaxPrice: proto.Float64(math.Inf(1))}), "filter.max_price"},
		{"NaN max price", withFilter(&recsysv1.Filter{MaxPrice: proto.Float64(math.NaN())}), "filter.max_price"},
		{"unknown availability", withFilter(&recsysv1.Filter{Availability: 7}), "filter.availability"},
		{"empty category", withFilter(&recsysv1.Filter{IncludeCategories: []string{"x", ""}}), "filter.include_categories[1]"},
		{"too many categories", withFilter(&recsysv1.Filter{ExcludeCategories: tooMany}), "filter.exclude_categories"},
		{"long tier", withFilter(&recsysv1.Filter{MemberTier: strings.Repeat("g", 257)}), "filter.member_tier"},
		{"negative cap", rec(&recsysv1.RecommendRequest{UserId: "u", Count: 3, MaxPerCategory: -1}), "max_per_category"},
		{"similar filter", func() error {
			_, err := e.rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: "a1", Count: 3, Filter: &recsysv1.Filter{MinPrice: proto.Float64(-2)}})
			return err
		}, "filter.min_price"},
		{"impression with a weight", func() error {
			x := ev("u", "a1", impression, now)
			x.Weight = 1
			_, err := e.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{x}})
			return err
		}, "events[0].weight"},
		{"sale window inverted", func() error {
			_, err := e.catalog.UpsertItems(ctx, &recsysv1.UpsertItemsRequest{Items: []*recsysv1.Item{{ItemId: "x",
				ValidFrom: timestamppb.New(now), ValidUntil: timestamppb.New(now)}}})
			return err
		}, "items[0].valid_until"},
		{"bad valid_from", func() error {
			_, err := e.catalog.UpsertItems(ctx, &recsysv1.UpsertItemsRequest{Items: []*recsysv1.Item{{ItemId: "x",
				ValidFrom: &timestamppb.Timestamp{Nanos: -1}}}})
			return err
		}, "items[0].valid_from"},
		{"empty blocklist addition", func() error {
			_, err := e.catalog.AddToBlocklist(ctx, &recsysv1.AddToBlocklistRequest{})
			return err
		}, "item_ids"},
		{"empty blocked id", func() error {
			_, err := e.catalog.RemoveFromBlocklist(ctx, &recsysv1.RemoveFromBlocklistRequest{ItemIds: []string{""}})
			return err
		}, "item_ids[0]"},
		{"empty blocked category", func() error {
			_, err := e.catalog.SetBlocklist(ctx, &recsysv1.SetBlocklistRequest{Categories: []string{"ok", ""}})
			return err
		}, "categories[1]"},
		{"no categories", func() error {
			_, err := e.catalog.UpsertCategories(ctx, &recsysv1.UpsertCategoriesRequest{})
			return err
		}, "categories"},
		{"category without name", func() error {
			_, err := e.catalog.UpsertCategories(ctx, &recsysv1.UpsertCategoriesRequest{Categories: []*recsysv1.Category{{}}})
			return err
		}, "categories[0].name"},
		{"negative repeat interval", func() error {
			_, err := e.catalog.UpsertCategories(ctx, &recsysv1.UpsertCategoriesRequest{Categories: []*recsysv1.Category{
				{Name: "x", RepeatableAfter: durationpb.New(-time.Hour)}}})
			return err
		}, "categories[0].repeatable_after"},
		{"opt-out without user", func() error {
			_, err := e.events.SetOptOut(ctx, &recsysv1.SetOptOutRequest{OptedOut: true})
			return err
		}, "user_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			st, _ := status.FromError(err)
			if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), tc.field+":") {
				t.Errorf("got %v %q, want InvalidArgument naming %q", st.Code(), st.Message(), tc.field)
			}
		})
	}
}

// keep the event package's numbering and the API's in step.
func TestEventTypeNumbersMatchTheAPI(t *testing.T) {
	for _, tc := range []struct {
		api  recsysv1.EventType
		core event.Type
	}{{view, event.View}, {cart, event.AddToCart}, {purchase, event.Purchase},
		{recsysv1.EventType_EVENT_TYPE_CUSTOM, event.Custom}, {impression, event.Impression},
		{recsysv1.EventType_EVENT_TYPE_PUSH, event.Push}, {search, event.Search}, {rating, event.Rating},
		{notInterested, event.NotInterested}, {wishlist, event.Wishlist}} {
		if int(tc.api) != int(tc.core) {
			t.Errorf("%v = %d, event.%v = %d", tc.api, tc.api, tc.core, tc.core)
		}
	}
}
