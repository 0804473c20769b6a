package server_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/redistest"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

const (
	search        = recsysv1.EventType_EVENT_TYPE_SEARCH
	rating        = recsysv1.EventType_EVENT_TYPE_RATING
	notInterested = recsysv1.EventType_EVENT_TYPE_NOT_INTERESTED
	wishlist      = recsysv1.EventType_EVENT_TYPE_WISHLIST
)

func (e *env) profileOf(t *testing.T, user string) *recsysv1.Profile {
	t.Helper()
	p, err := e.events.GetProfile(context.Background(), &recsysv1.GetProfileRequest{UserId: user})
	if err != nil {
		t.Fatalf("GetProfile: %v", err)
	}
	return p.GetProfile()
}

func rated(user, item string, r float32, at time.Time) *recsysv1.Event {
	x := ev(user, item, rating, at)
	x.Rating = r
	return x
}

func TestNotInterestedExcludesImmediately(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	e := newEnvWith(t, envOptions{model: true, clock: &clock{t: now}, profile: func(c *profile.Config) {
		c.NotInterestedTTL = 48 * time.Hour
	}})
	e.upsert(t, plantedCatalog(now)...)
	top := func(n int) []string {
		return ids(e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: int32(n)}).GetItems())
	}
	e.record(t, ev("u", "a0", view, now.Add(-time.Hour)))
	if got := top(3); !slices.Contains(got, "a9") {
		t.Fatalf("before: %v, want a9 among the top", got)
	}
	e.record(t, ev("u", "a9", notInterested, now))
	if got := top(29); slices.Contains(got, "a9") {
		t.Errorf("after NOT_INTERESTED a9: %v still holds a9", got)
	}
	// A whole category.
	dismissCat := ev("u", "", notInterested, now)
	dismissCat.Category = "cat-a"
	e.record(t, dismissCat)
	for _, id := range top(20) {
		if strings.HasPrefix(id, "a") {
			t.Errorf("after NOT_INTERESTED cat-a: got %s", id)
		}
	}
	// RankItems drops them too.
	rk, err := e.rec.RankItems(context.Background(), &recsysv1.RankItemsRequest{UserId: "u", ItemIds: []string{"a3", "b1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(rk.GetItems()); !slices.Equal(got, []string{"b1"}) {
		t.Errorf("RankItems after dismissing cat-a: %v, want [b1]", got)
	}
	p := e.profileOf(t, "u")
	if got := len(p.GetDismissals()); got != 2 {
		t.Errorf("profile dismissals %v, want 2", p.GetDismissals())
	}
	// Past the TTL the dismissals lapse.
	e.clock.Advance(48*time.Hour + time.Millisecond)
	if got := top(29); !slices.Contains(got, "a9") || !slices.Contains(got, "a1") {
		t.Errorf("after the TTL: %v, want a-items back", got)
	}
	// Dismissals weigh nothing and never reach the training stream.
	for _, id := range []string{"a9"} {
		for _, it := range p.GetItems() {
			if it.GetItemId() == id {
				t.Errorf("dismissed %s is in the profile's items", id)
			}
		}
	}
}

func TestLowRatingMovesDownAndHighRatingCounts(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	// Keep the history in answers, so the rated item can be placed.
	e := newEnvWith(t, envOptions{model: true, clock: &clock{t: now}, engine: func(c *recommend.Config) { c.KeepHistory = true }})
	e.record(t, ev("u", "a0", view, now.Add(-time.Hour)), rated("u", "a9", 1, now))
	all := ids(e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 30}).GetItems())
	if len(all) == 0 || all[len(all)-1] != "a9" {
		t.Errorf("after rating a9 1: %v, want a9 last", all)
	}
	p := e.profileOf(t, "u")
	if d := p.GetDismissals(); len(d) != 1 || d[0].GetItemId() != "a9" || !d[0].GetLowRating() {
		t.Errorf("dismissals %v, want a9 rated low", d)
	}
	// A later good rating lifts it again and weighs as configured.
	e.record(t, rated("u", "a9", 5, now.Add(time.Second)))
	p = e.profileOf(t, "u")
	if len(p.GetDismissals()) != 0 {
		t.Errorf("dismissals after rating 5: %v, want none", p.GetDismissals())
	}
	w := map[string]float64{}
	for _, it := range p.GetItems() {
		w[it.GetItemId()] = it.GetWeight()
	}
	// Rating 1 weighs 0, rating 5 the full rating weight (no decay: the
	// events are at most an hour old against a 30-day half-life).
	if got, want := w["a9"], float64(event.DefaultRatingWeight); got < want*0.99 || got > want {
		t.Errorf("weight of a9 rated 1 then 5: %v, want ~%v", got, want)
	}
}

func TestWishlistIsASignal(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	e := newEnvWith(t, envOptions{model: true, clock: &clock{t: now}})
	e.record(t, ev("u", "b2", wishlist, now))
	res := e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 3})
	if res.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED {
		t.Fatalf("source %v, want personalized", res.GetSource())
	}
	for _, id := range ids(res.GetItems()) {
		if !strings.HasPrefix(id, "b") {
			t.Errorf("after a wishlist of b2: %v, want b-items", ids(res.GetItems()))
			break
		}
	}
	if it := e.profileOf(t, "u").GetItems(); len(it) != 1 || it[0].GetWeight() != event.DefaultWishlistWeight {
		t.Errorf("profile items %v, want b2 with weight %v", it, event.DefaultWishlistWeight)
	}
}

func TestSearchBecomesAffinitiesNotStream(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	e := newEnvWith(t, envOptions{model: true, clock: &clock{t: now}})
	items := plantedCatalog(now)
	items = with(items, "b3", func(it *recsysv1.Item) { it.Brand = "Acme Outdoor"; it.Category = "Running Shoes" })
	e.upsert(t, items...)
	q := ev("u", "", search, now)
	q.Query = "cheap ACME running-shoes"
	e.record(t, q)
	e.record(t, q) // a retry counts once
	got := map[string]float64{}
	for _, a := range e.profileOf(t, "u").GetSearchAffinities() {
		got[a.GetAttribute()+"="+a.GetValue()] = a.GetCount()
	}
	want := map[string]float64{"brand=Acme Outdoor": 1, "category=Running Shoes": 1}
	if len(got) != len(want) || got["brand=Acme Outdoor"] != 1 || got["category=Running Shoes"] != 1 {
		t.Errorf("search affinities %v, want %v", got, want)
	}
	// The query is in no key of the test's prefix, and the stream has no
	// entry for the search.
	rdb := redistest.Client(t)
	keys, err := rdb.Keys(context.Background(), e.prefix+":*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.HasSuffix(k, ":events") {
			if n, err := rdb.XLen(context.Background(), k).Result(); err != nil || n != 0 {
				t.Errorf("stream %s has %d entries (%v), want none", k, n, err)
			}
		}
		dump, err := rdb.Dump(context.Background(), k).Result()
		if err == nil && strings.Contains(strings.ToLower(dump), "cheap") {
			t.Errorf("key %s holds the query text", k)
		}
	}
}

func TestSignalEventsInvalid(t *testing.T) {
	e := newEnv(t, true)
	now := e.clock.Now()
	for _, tc := range []struct {
		name  string
		ev    func() *recsysv1.Event
		field string
	}{
		{"search without query", func() *recsysv1.Event { return ev("u", "", search, now) }, "events[0].query"},
		{"search with an item", func() *recsysv1.Event { x := ev("u", "a1", search, now); x.Query = "x"; return x }, "events[0].item_id"},
		{"query on a view", func() *recsysv1.Event { x := ev("u", "a1", view, now); x.Query = "x"; return x }, "events[0].query"},
		{"long query", func() *recsysv1.Event {
			x := ev("u", "", search, now)
			x.Query = strings.Repeat("q", 1025)
			return x
		}, "events[0].query"},
		{"rating 0", func() *recsysv1.Event { return ev("u", "a1", rating, now) }, "events[0].rating"},
		{"rating 6", func() *recsysv1.Event { return rated("u", "a1", 6, now) }, "events[0].rating"},
		{"rating on a view", func() *recsysv1.Event { x := ev("u", "a1", view, now); x.Rating = 4; return x }, "events[0].rating"},
		{"dismissal of nothing", func() *recsysv1.Event { return ev("u", "", notInterested, now) }, "events[0].category"},
		{"dismissal of both", func() *recsysv1.Event {
			x := ev("u", "a1", notInterested, now)
			x.Category = "c"
			return x
		}, "events[0].category"},
		{"category on a wishlist", func() *recsysv1.Event {
			x := ev("u", "a1", wishlist, now)
			x.Category = "c"
			return x
		}, "events[0].category"},
		{"wishlist without item", func() *recsysv1.Event { return ev("u", "", wishlist, now) }, "events[0].item_id"},
		{"wishlist with weight", func() *recsysv1.Event { x := ev("u", "a1", wishlist, now); x.Weight = 2; return x }, "events[0].weight"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.events.RecordEvents(context.Background(), &recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{tc.ev()}})
			st, _ := status.FromError(err)
			if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), tc.field+":") {
				t.Errorf("got %v %q, want InvalidArgument naming %q", st.Code(), st.Message(), tc.field)
			}
		})
	}
}
