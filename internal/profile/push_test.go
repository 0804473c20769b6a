package profile

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

func TestPushesAreKeptApartFromInterest(t *testing.T) {
	t.Parallel()
	s, c, clk := newStore(t, Config{PushCap: 3})
	ctx := context.Background()
	const u = "pat"
	res := record(t, s,
		event.Event{ID: "v1", UserID: u, ItemID: "a", Type: event.View, Time: t0.Add(-time.Hour)},
		event.Event{ID: "p1", UserID: u, ItemID: "b", Type: event.Push, Time: t0.Add(-2 * time.Hour)},
		event.Event{ID: "p2", UserID: u, ItemID: "b", Type: event.Push, Time: t0.Add(-30 * time.Minute)},
	)
	if res.Accepted != 3 {
		t.Errorf("Record: got %+v, want 3 accepted", res)
	}
	// A retried push (same item and time) is a duplicate; an older one too.
	res = record(t, s,
		event.Event{ID: "p2", UserID: u, ItemID: "b", Type: event.Push, Time: t0.Add(-30 * time.Minute)},
		event.Event{ID: "p3", UserID: u, ItemID: "b", Type: event.Push, Time: t0.Add(-3 * time.Hour)},
	)
	if res.Duplicates != 2 {
		t.Errorf("retry: got %+v, want 2 duplicates", res)
	}
	p, err := s.Load(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Pushed{{ItemID: "b", Time: t0.Add(-30 * time.Minute)}}; !slices.Equal(p.Pushed, want) {
		t.Errorf("Pushed: got %+v, want %+v", p.Pushed, want)
	}
	// Not interest: not in the history, the activity times or the stream.
	if len(p.History) != 1 || p.History[0].ItemID != "a" || !p.LastSeen.Equal(t0.Add(-time.Hour)) {
		t.Errorf("history %+v, last seen %v: a push must not count", p.History, p.LastSeen)
	}
	var streamed []event.Event
	if err := s.ReadEvents(ctx, time.Time{}, time.Time{}, func(e event.Event) error {
		streamed = append(streamed, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(streamed) != 1 || streamed[0].Type != event.View {
		t.Errorf("stream: got %+v, want the view only", streamed)
	}
	// Capped: the items pushed longest ago go first.
	for i := range 4 {
		record(t, s, event.Event{ID: fmt.Sprint("c", i), UserID: u, ItemID: fmt.Sprint("c", i), Type: event.Push, Time: t0.Add(time.Duration(i) * time.Minute)})
	}
	if n := c.ZCard(ctx, s.keysOf(u).push).Val(); n != 3 {
		t.Errorf("push set: %d items, want the cap 3", n)
	}
	// Past the push window they are forgotten at the next push.
	clk.Set(t0.Add(s.Config().PushWindow + time.Hour))
	record(t, s, event.Event{ID: "late", UserID: u, ItemID: "z", Type: event.Push})
	if p, err = s.Load(ctx, u); err != nil || len(p.Pushed) != 1 || p.Pushed[0].ItemID != "z" {
		t.Errorf("after the window: got %+v, %v; want only z", p.Pushed, err)
	}
	// Opted out: pushes are not stored.
	if err := s.SetOptOut(ctx, u, true); err != nil {
		t.Fatal(err)
	}
	record(t, s, event.Event{ID: "oo", UserID: u, ItemID: "y", Type: event.Push})
	if p, err = s.Load(ctx, u); err != nil || len(p.Pushed) != 0 {
		t.Errorf("opted out: got %+v, %v; want no pushes", p.Pushed, err)
	}
}

// TestSegmentTransitions follows one user through new, active and dormant
// on an injected clock, with spend from the catalog price at record time.
func TestSegmentTransitions(t *testing.T) {
	t.Parallel()
	prices := map[string]float64{"shoe": 40, "sock": 5}
	s, _, clk := newStore(t, Config{Price: func(id string) float64 { return prices[id] }})
	ctx := context.Background()
	cfg := SegmentConfig{NewAge: 14 * 24 * time.Hour, ActiveAge: 30 * 24 * time.Hour, Window: 60 * 24 * time.Hour}
	const u = "sam"
	day := 24 * time.Hour
	record(t, s,
		event.Event{ID: "1", UserID: u, ItemID: "shoe", Type: event.Purchase, Quantity: 2, Time: t0},
		event.Event{ID: "2", UserID: u, ItemID: "sock", Type: event.Purchase, Time: t0.Add(time.Hour)},
		event.Event{ID: "3", UserID: u, ItemID: "hat", Type: event.Purchase, Time: t0.Add(2 * time.Hour)}, // no price
	)
	prices["shoe"] = 1000 // a later price change does not rewrite history
	seg := func(at time.Time) Segment {
		t.Helper()
		clk.Set(at)
		p, err := s.Load(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		return p.Segment(cfg, at)
	}
	for _, tc := range []struct {
		name string
		at   time.Time
		want Segment
	}{
		{"first day", t0.Add(3 * time.Hour), Segment{Lifecycle: LifecycleNew, Purchases: 3, Spend: 85, PerMonth: 1.5}},
		{"day 13", t0.Add(13 * day), Segment{Lifecycle: LifecycleNew, Purchases: 3, Spend: 85, PerMonth: 1.5}},
		{"day 14: no longer new, still active", t0.Add(14*day + 3*time.Hour), Segment{Lifecycle: LifecycleActive, Purchases: 3, Spend: 85, PerMonth: 1.5}},
		{"day 31: dormant", t0.Add(31 * day), Segment{Lifecycle: LifecycleDormant, Purchases: 3, Spend: 85, PerMonth: 1.5}},
		{"day 61: purchases left the window", t0.Add(61 * day), Segment{Lifecycle: LifecycleDormant}},
	} {
		if got := seg(tc.at); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
	// A view brings the dormant user back to active.
	record(t, s, event.Event{ID: "4", UserID: u, ItemID: "shoe", Type: event.View, Time: t0.Add(61 * day)})
	if got := seg(t0.Add(62 * day)); got.Lifecycle != LifecycleActive {
		t.Errorf("after a new view: got %v, want active", got.Lifecycle)
	}
	// A never-seen user has no lifecycle.
	if got := (Profile{UserID: "x"}).Segment(cfg, t0); got.Lifecycle != LifecycleUnknown {
		t.Errorf("unknown user: got %v", got.Lifecycle)
	}
}

// TestEachSeenUser pages through the users by last activity, newest first,
// with ties at page boundaries, and forgets deleted and opted-out users.
func TestEachSeenUser(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, Config{})
	ctx := context.Background()
	var evs []event.Event
	for i := range 10 {
		// Users 0..9; 3, 4, 5 and 6 share a last-seen time.
		at := t0.Add(-time.Duration(i) * time.Hour)
		if i >= 3 && i <= 6 {
			at = t0.Add(-3 * time.Hour)
		}
		evs = append(evs, event.Event{ID: fmt.Sprint(i), UserID: fmt.Sprint("u", i), ItemID: "a", Type: event.View, Time: at})
	}
	evs = append(evs, event.Event{ID: "imp", UserID: "only-shown", ItemID: "a", Type: event.Impression})
	record(t, s, evs...)
	collect := func(since, until time.Time, page int) []string {
		t.Helper()
		var got []string
		if err := s.EachSeenUser(ctx, since, until, page, func(ids []string) error {
			if len(ids) > page {
				t.Errorf("page of %d, want at most %d", len(ids), page)
			}
			got = append(got, ids...)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	all := collect(time.Time{}, time.Time{}, 1000)
	if len(all) != 10 || all[0] != "u0" || all[9] != "u9" {
		t.Fatalf("all users: got %v", all)
	}
	for _, page := range []int{1, 2, 3, 4} {
		if got := collect(time.Time{}, time.Time{}, page); !slices.Equal(got, all) {
			t.Errorf("page %d: got %v, want %v", page, got, all)
		}
	}
	// since inclusive, until exclusive.
	if got := collect(t0.Add(-3*time.Hour), t0.Add(-time.Hour), 2); !slices.Equal(got, all[2:7]) {
		t.Errorf("window: got %v, want %v", got, all[2:7])
	}
	if _, err := s.Delete(ctx, "u0"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOptOut(ctx, "u1", true); err != nil {
		t.Fatal(err)
	}
	if got := collect(time.Time{}, time.Time{}, 3); !slices.Equal(got, all[2:]) {
		t.Errorf("after delete and opt-out: got %v, want %v", got, all[2:])
	}
	profiles, err := s.LoadMany(ctx, []string{"u2", "nobody", "u2"})
	if err != nil || len(profiles) != 3 || len(profiles[0].History) != 1 || profiles[1].UserID != "nobody" ||
		len(profiles[1].History) != 0 || profiles[2].UserID != "u2" {
		t.Errorf("LoadMany: got %+v, %v", profiles, err)
	}
}

// The activity index is bounded: at most SeenCap users (the most recently
// active kept) and a TTL.
func TestSeenIndexIsCappedAndExpires(t *testing.T) {
	t.Parallel()
	s, c, _ := newStore(t, Config{SeenCap: 3})
	ctx := context.Background()
	for i := range 5 {
		// u4 is the most recently active.
		record(t, s, event.Event{ID: fmt.Sprint("cap", i), UserID: fmt.Sprint("u", i), ItemID: "a", Type: event.View,
			Time: t0.Add(-time.Duration(5-i) * time.Hour)})
	}
	got, err := c.ZRevRange(ctx, s.seen, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"u4", "u3", "u2"}) {
		t.Errorf("index holds %v, want the 3 most recent [u4 u3 u2]", got)
	}
	if ttl := c.PTTL(ctx, s.seen).Val(); ttl <= 0 {
		t.Errorf("index TTL %v, want one", ttl)
	}
}
