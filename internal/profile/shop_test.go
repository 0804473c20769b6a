package profile

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

func impressionsOf(p Profile) map[string][]time.Time {
	out := map[string][]time.Time{}
	for _, im := range p.Impressions {
		out[im.ItemID] = im.Times
	}
	return out
}

func TestImpressions(t *testing.T) {
	t.Parallel()
	type ev struct {
		item string
		typ  event.Type
		min  int // minutes after t0
	}
	tests := []struct {
		name   string
		keep   int
		events [][]ev // batches, in order
		want   map[string][]int
	}{
		{"counted per item", 3, [][]ev{{{"a", event.Impression, 1}, {"b", event.Impression, 1}, {"a", event.Impression, 2}}},
			map[string][]int{"a": {1, 2}, "b": {1}}},
		{"newest kept", 2, [][]ev{{{"a", event.Impression, 1}, {"a", event.Impression, 2}, {"a", event.Impression, 3}}},
			map[string][]int{"a": {2, 3}}},
		{"a click drops what came before it", 3, [][]ev{
			{{"a", event.Impression, 1}, {"a", event.Impression, 2}, {"b", event.Impression, 2}},
			{{"a", event.View, 3}},
			{{"a", event.Impression, 4}},
		}, map[string][]int{"a": {4}, "b": {1 + 1}}},
		{"a late click keeps later impressions", 3, [][]ev{
			{{"a", event.Impression, 1}, {"a", event.Impression, 5}},
			{{"a", event.AddToCart, 3}},
		}, map[string][]int{"a": {5}}},
		{"an impression older than the last click is not counted", 3, [][]ev{
			{{"a", event.Impression, 1}, {"a", event.Impression, 9}},
			{{"a", event.Purchase, 5}},
			{{"a", event.Impression, 4}},
		}, map[string][]int{"a": {9}}},
		{"a click removes the item", 3, [][]ev{
			{{"a", event.Impression, 1}},
			{{"a", event.Purchase, 2}},
		}, map[string][]int{}},
		{"out of order within a batch", 3, [][]ev{{{"a", event.Impression, 7}, {"a", event.Impression, 3}, {"a", event.Impression, 5}}},
			map[string][]int{"a": {3, 5, 7}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _, _ := newStore(t, Config{ImpressionKeep: tc.keep})
			id := 0
			for _, batch := range tc.events {
				var evs []event.Event
				for _, e := range batch {
					id++
					evs = append(evs, event.Event{ID: strconv.Itoa(id), UserID: "u", ItemID: e.item, Type: e.typ,
						Time: t0.Add(time.Duration(e.min) * time.Minute)})
				}
				record(t, s, evs...)
			}
			got := impressionsOf(load(t, s, "u"))
			want := map[string][]time.Time{}
			for item, mins := range tc.want {
				for _, m := range mins {
					want[item] = append(want[item], t0.Add(time.Duration(m)*time.Minute))
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("impressions\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestImpressionsAreNotHistoryNorStream(t *testing.T) {
	t.Parallel()
	s, c, _ := newStore(t, Config{})
	res := record(t, s,
		event.Event{ID: "1", UserID: "u", ItemID: "a", Type: event.Impression},
		event.Event{ID: "2", UserID: "u", ItemID: "b", Type: event.View})
	if res.Accepted != 2 {
		t.Fatalf("accepted %d, want 2", res.Accepted)
	}
	if res := record(t, s, event.Event{ID: "1", UserID: "u", ItemID: "a", Type: event.Impression}); res.Duplicates != 1 {
		t.Errorf("retried impression: %+v, want a duplicate", res)
	}
	// A batch of impressions only has no global part at all.
	record(t, s, event.Event{ID: "3", UserID: "u", ItemID: "c", Type: event.Impression})
	p := load(t, s, "u")
	if len(p.History) != 1 || p.History[0].ItemID != "b" {
		t.Errorf("history %+v, want only the view of b", p.History)
	}
	if got := impressionsOf(p); len(got["a"]) != 1 || len(got["c"]) != 1 {
		t.Errorf("impressions %v, want a and c once", got)
	}
	// They are not in the dedup set, which keeps room for real events.
	if n := c.ZCard(context.Background(), s.keysOf("u").eids).Val(); n != 1 {
		t.Errorf("dedup set holds %d ids, want only the view's", n)
	}
	got := readAll(t, s, time.Time{}, time.Time{})
	if len(got) != 1 || got[0].ItemID != "b" {
		t.Errorf("stream %+v, want only the view", got)
	}
	if pop := popular(t, s, 10); len(pop) != 1 || pop[0].ItemID != "b" {
		t.Errorf("popular %+v, want only b", pop)
	}
}

func TestImpressionCap(t *testing.T) {
	t.Parallel()
	const capItems = 20
	s, c, _ := newStore(t, Config{ImpressionCap: capItems})
	var evs []event.Event
	for i := range 50 {
		evs = append(evs, event.Event{ID: strconv.Itoa(i), UserID: "u", ItemID: "i" + strconv.Itoa(i), Type: event.Impression,
			Time: t0.Add(time.Duration(i) * time.Second)})
		if len(evs) == 7 {
			record(t, s, evs...)
			evs = nil
		}
	}
	record(t, s, evs...)
	n := c.HLen(context.Background(), s.keysOf("u").imp).Val()
	if n > capItems || n < capItems-capItems/10-7 {
		t.Fatalf("%d items kept, want at most %d (and not far below)", n, capItems)
	}
	got := impressionsOf(load(t, s, "u"))
	if _, ok := got["i49"]; !ok {
		t.Errorf("the newest item was evicted: %v", got)
	}
	if _, ok := got["i0"]; ok {
		t.Errorf("the oldest item survived: %v", got)
	}
}

func TestShownSince(t *testing.T) {
	im := Impressions{Times: []time.Time{t0, t0.Add(time.Hour), t0.Add(2 * time.Hour)}}
	for _, tc := range []struct {
		since time.Time
		want  int
	}{{t0.Add(-time.Hour), 3}, {t0, 3}, {t0.Add(time.Nanosecond), 2}, {t0.Add(2 * time.Hour), 1}, {t0.Add(3 * time.Hour), 0}} {
		if got := im.ShownSince(tc.since); got != tc.want {
			t.Errorf("ShownSince(%v) = %d, want %d", tc.since, got, tc.want)
		}
	}
}

func TestOptOut(t *testing.T) {
	t.Parallel()
	s, c, clk := newStore(t, Config{})
	ctx := context.Background()
	record(t, s,
		event.Event{ID: "1", UserID: "u", ItemID: "a", Type: event.View},
		event.Event{ID: "2", UserID: "u", ItemID: "b", Type: event.Purchase},
		event.Event{ID: "3", UserID: "u", ItemID: "c", Type: event.Impression},
		event.Event{ID: "4", UserID: "other", ItemID: "a", Type: event.View})
	if err := s.SetOptOut(ctx, "u", true); err != nil {
		t.Fatal(err)
	}
	p := load(t, s, "u")
	if !p.OptedOut || p.History != nil || p.Impressions != nil || p.PurchaseCount != 0 || !p.FirstSeen.IsZero() {
		t.Errorf("after opting out: %+v, want only the flag and purchases", p)
	}
	if len(p.Purchased) != 1 || p.Purchased[0].ItemID != "b" {
		t.Errorf("purchases %+v, want b kept for purchase exclusion", p.Purchased)
	}
	k := s.keysOf("u")
	for _, key := range []string{k.hist, k.imp} {
		if c.Exists(ctx, key).Val() != 0 {
			t.Errorf("key %s survived the opt-out", key)
		}
	}
	// New events keep only purchases, and none reaches the stream, though
	// popularity counts them.
	clk.Set(t0.Add(time.Minute))
	res := record(t, s,
		event.Event{ID: "5", UserID: "u", ItemID: "d", Type: event.View},
		event.Event{ID: "6", UserID: "u", ItemID: "e", Type: event.Purchase},
		event.Event{ID: "7", UserID: "u", ItemID: "f", Type: event.Impression},
		event.Event{ID: "8", UserID: "other", ItemID: "g", Type: event.View})
	if res.Accepted != 4 {
		t.Errorf("accepted %d, want 4", res.Accepted)
	}
	if res := record(t, s, event.Event{ID: "6", UserID: "u", ItemID: "e", Type: event.Purchase}); res.Duplicates != 1 {
		t.Errorf("retried purchase of an opted-out user: %+v, want a duplicate", res)
	}
	p = load(t, s, "u")
	if p.History != nil || p.Impressions != nil || len(p.Purchased) != 2 || p.Purchased[0].ItemID != "e" || !p.LastSeen.IsZero() {
		t.Errorf("after new events: %+v, want only purchases e, b", p)
	}
	var streamed []string
	for _, e := range readAll(t, s, t0.Add(30*time.Second), time.Time{}) {
		streamed = append(streamed, e.UserID+"/"+e.ItemID)
	}
	if !slices.Equal(streamed, []string{"other/g"}) {
		t.Errorf("stream after the opt-out: %v, want only other/g", streamed)
	}
	var items []string
	for _, p := range popular(t, s, 10) {
		items = append(items, p.ItemID)
	}
	slices.Sort(items)
	if !slices.Equal(items, []string{"a", "b", "d", "e", "g"}) {
		t.Errorf("popular %v, want the opted-out user's events counted too", items)
	}
	// Opting in again: events are kept again, from scratch.
	if err := s.SetOptOut(ctx, "u", false); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(2 * time.Minute))
	record(t, s, event.Event{ID: "9", UserID: "u", ItemID: "h", Type: event.View})
	p = load(t, s, "u")
	if p.OptedOut || len(p.History) != 1 || p.History[0].ItemID != "h" {
		t.Errorf("after opting in: %+v", p)
	}
	if got := readAll(t, s, t0.Add(90*time.Second), time.Time{}); len(got) != 1 || got[0].ItemID != "h" {
		t.Errorf("stream after opting in: %+v, want h", got)
	}
	// Delete forgets the flag in both places.
	if err := s.SetOptOut(ctx, "u", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if c.ZScore(ctx, s.optOut, "u").Err() == nil {
		t.Error("Delete left the user in the opt-out set")
	}
	if err := s.SetOptOut(ctx, "", true); err == nil {
		t.Error("SetOptOut of an empty user id: got nil error")
	}
}

func TestTrending(t *testing.T) {
	t.Parallel()
	s, _, clk := newStore(t, Config{TrendingWindow: 6 * time.Hour, TrendingPrior: 1, TrendingMinWeight: 3})
	day := t0.Truncate(24 * time.Hour)
	now := day.Add(6*24*time.Hour + 30*time.Minute)
	clk.Set(now)
	id := 0
	var evs []event.Event
	add := func(item string, at time.Time, n int) {
		for range n {
			id++
			evs = append(evs, event.Event{ID: strconv.Itoa(id), UserID: "u" + strconv.Itoa(id%97), ItemID: item, Type: event.View, Time: at})
		}
	}
	// steady: a view every 15 minutes over the week, a little less in the
	// last half hour (popular, flat).
	for k := 2; k <= 670; k++ {
		add("steady", now.Add(-time.Duration(k*15)*time.Minute+7*time.Minute+30*time.Second), 1)
	}
	// surge: nothing for days, then 12 views in the last hour.
	add("surge", now.Add(-20*time.Minute), 12)
	// riser: a little before, more now.
	add("riser", now.Add(-5*24*time.Hour), 3)
	add("riser", now.Add(-time.Hour), 8)
	// blip: 2 views now, below the least weight.
	add("blip", now, 2)
	for len(evs) > 0 {
		n := min(len(evs), 200)
		record(t, s, evs[:n]...)
		evs = evs[n:]
	}
	pop := popular(t, s, 10)
	if pop[0].ItemID != "steady" {
		t.Fatalf("popular %+v, want steady first (the premise)", pop)
	}
	got, err := s.Trending(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, g := range got {
		ids = append(ids, g.ItemID)
	}
	if !slices.Equal(ids, []string{"surge", "riser"}) {
		t.Fatalf("trending %v (%+v), want [surge riser]", ids, got)
	}
	// The exact ratio of surge: 12 views in the short window (5 full hours
	// plus the 30 minutes of the current bucket), the same 12 in the whole
	// window (167 hours plus 30 minutes).
	shortH, longH := 5.5, 167.5
	if want := (12/shortH + 1) / (12/longH + 1); math.Abs(got[0].Score-want) > 1e-9 {
		t.Errorf("ratio of surge %v, want %v", got[0].Score, want)
	}
	if got, err := s.Trending(context.Background(), 1); err != nil || len(got) != 1 || got[0].ItemID != "surge" {
		t.Errorf("Trending(1) = %+v, %v", got, err)
	}
	if _, err := s.Trending(context.Background(), 0); err == nil {
		t.Error("Trending(0): got nil error")
	}
}

func TestPopularityOf(t *testing.T) {
	t.Parallel()
	s, _, clk := newStore(t, Config{})
	clk.Set(t0.Add(20 * time.Minute))
	record(t, s,
		event.Event{ID: "1", UserID: "u", ItemID: "a", Type: event.View, Time: t0.Add(-30 * time.Hour)},
		event.Event{ID: "2", UserID: "u", ItemID: "a", Type: event.Purchase, Time: t0.Add(10 * time.Minute)},
		event.Event{ID: "3", UserID: "u", ItemID: "b", Type: event.AddToCart, Time: t0.Add(-2 * time.Hour)})
	got, err := s.PopularityOf(context.Background(), []string{"b", "none", "a"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	for _, p := range popular(t, s, 10) {
		want[p.ItemID] = p.Score
	}
	for i, id := range []string{"b", "none", "a"} {
		if !closeTo(got[i], want[id]) {
			t.Errorf("PopularityOf(%s) = %v, want Popular's %v", id, got[i], want[id])
		}
	}
	if got, err := s.PopularityOf(context.Background(), nil); err != nil || got != nil {
		t.Errorf("PopularityOf(nil) = %v, %v", got, err)
	}
}
