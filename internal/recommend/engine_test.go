package recommend

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/profile"
)

// staticCatalog is an in-memory Catalog whose version the test bumps.
type staticCatalog struct {
	mu      sync.Mutex
	items   map[string]catalog.Item
	version uint64
}

func (c *staticCatalog) Lookup(id string) (catalog.Item, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[id]
	return it, ok
}
func (c *staticCatalog) Known() bool { return true }
func (c *staticCatalog) Version() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}
func (c *staticCatalog) set(it catalog.Item) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items[it.ID] = it
	c.version++
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestCapPerCategory(t *testing.T) {
	cat := func(i int32) int32 { return i / 10 } // 0-9 category 0, 10-19 category 1, ...; 100+ none
	none := func(i int32) int32 {
		if i >= 100 {
			return -1
		}
		return i / 10
	}
	tests := []struct {
		name   string
		ranked []int32
		k, max int
		cat    func(int32) int32
		want   []int32
	}{
		{"no cap", []int32{1, 2, 3, 11}, 3, 0, cat, []int32{1, 2, 3}},
		{"cap 2", []int32{1, 2, 3, 11, 4, 21, 12, 13}, 5, 2, cat, []int32{1, 2, 11, 21, 12}},
		{"cap 1", []int32{1, 2, 11, 12, 21}, 3, 1, cat, []int32{1, 11, 21}},
		{"short list", []int32{1, 2, 3}, 5, 1, cat, []int32{1}},
		{"uncategorized never capped", []int32{100, 101, 1, 102, 2}, 4, 1, none, []int32{100, 101, 1, 102}},
	}
	for _, tc := range tests {
		if got := CapPerCategory(nil, tc.ranked, tc.k, tc.max, tc.cat); !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// shopEngine is an engine over a random model of n items whose catalog
// spreads them over skewed categories, for a user with a varied history.
func shopEngine(t testing.TB, n int, cfg Config) (*Engine, *staticCatalog, profile.Profile) {
	t.Helper()
	m := benchModel(t, n, 16)
	rng := rand.New(rand.NewPCG(3, 3))
	cat := &staticCatalog{items: map[string]catalog.Item{}, version: 1}
	for i := range n {
		c := "c" + strconv.Itoa(int(rng.ExpFloat64()*3)) // c0 most common
		cat.items[m.ItemID(int32(i))] = catalog.Item{ID: m.ItemID(int32(i)), Category: c, Available: true, Price: 1 + float64(i%50)}
	}
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	var p profile.Profile
	for i := range 40 {
		p.History = append(p.History, profile.Entry{ItemID: m.ItemID(int32(rng.IntN(n))), Type: event.View, Time: now.Add(-time.Duration(i) * time.Hour)})
	}
	cfg.Now = func() time.Time { return now }
	eng, err := New(cfg, staticProfiles{p}, cat, NewPopular(noPopular{}, 10, quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	eng.SetModel(m)
	return eng, cat, p
}

// The heap passes of selectRows take exactly what CapPerCategory (a greedy
// walk down the fully sorted list) takes.
func TestCappedSelectionIsTheGreedyWalk(t *testing.T) {
	eng, cat, _ := shopEngine(t, 3000, Config{})
	ctx := context.Background()
	full, err := eng.Recommend(ctx, Request{UserID: "u", Count: 3000, MaxPerCategory: -1})
	if err != nil {
		t.Fatal(err)
	}
	ranked := make([]int32, len(full.Items))
	index := map[string]int32{}
	for i, it := range full.Items {
		ranked[i] = int32(i)
		index[it.ItemID] = int32(i)
	}
	catIndex := map[string]int32{}
	category := func(i int32) int32 {
		c := cat.items[full.Items[i].ItemID].Category
		if _, ok := catIndex[c]; !ok {
			catIndex[c] = int32(len(catIndex))
		}
		return catIndex[c]
	}
	for _, count := range []int{1, 5, 20, 100} {
		for _, maxPer := range []int{1, 2, 3, 7} {
			res, err := eng.Recommend(ctx, Request{UserID: "u", Count: count, MaxPerCategory: maxPer})
			if err != nil {
				t.Fatal(err)
			}
			want := CapPerCategory(nil, ranked, count, maxPer, category)
			got := make([]int32, 0, len(res.Items))
			for _, it := range res.Items {
				got = append(got, index[it.ItemID])
			}
			// With fewer categories than count/maxPer the cap is relaxed
			// after the capped items, which CapPerCategory does not do.
			if len(want) < count {
				got = got[:len(want)]
			}
			if !slices.Equal(got, want) {
				t.Errorf("count %d cap %d:\n got %v\nwant %v", count, maxPer, got, want)
			}
		}
	}
}

// A catalog change reaches the per-row state on the next request.
func TestRowStateFollowsTheCatalog(t *testing.T) {
	eng, cat, _ := shopEngine(t, 500, Config{})
	ctx := context.Background()
	first, err := eng.Recommend(ctx, Request{UserID: "u", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	best := first.Items[0].ItemID
	it := cat.items[best]
	it.Available = false
	cat.set(it)
	second, err := eng.Recommend(ctx, Request{UserID: "u", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	if second.Items[0].ItemID == best {
		t.Errorf("%s still returned after it became unavailable", best)
	}
	it.Available = true
	it.ValidFrom = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cat.set(it)
	third, _ := eng.Recommend(ctx, Request{UserID: "u", Count: 1})
	if third.Items[0].ItemID == best {
		t.Errorf("%s returned before its sale window", best)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []Config{
		{MaxPerCategory: -1}, {RotateAfter: -1}, {ExploreShare: 1.5}, {ExploreShare: -0.1}, {ColdSource: SourceSimilar},
	} {
		if _, err := New(cfg, staticProfiles{}, nil, NewPopular(noPopular{}, 1, quietLog())); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
	if _, err := NewArrivals(ArrivalsConfig{MaxPopularity: -1}, &catalog.Cache{}, nil, nil); err == nil {
		t.Error("arrivals without popularity accepted")
	}
}

func TestPlaceExploration(t *testing.T) {
	mk := func(ids ...string) []Item {
		var out []Item
		for _, id := range ids {
			out = append(out, Item{ItemID: id})
		}
		return out
	}
	got := func(items []Item) []string {
		var out []string
		for _, it := range items {
			out = append(out, it.ItemID)
		}
		return out
	}
	for _, tc := range []struct {
		items, picks []Item
		count        int
		want         []string
	}{
		{mk("0", "1", "2", "3", "4", "5", "6", "7", "8"), mk("x"), 10, []string{"0", "1", "2", "3", "4", "x", "5", "6", "7", "8"}},
		{mk("0", "1"), mk("x"), 10, []string{"0", "1", "x"}}, // a short answer: appended
		{mk(), mk("x", "y"), 10, []string{"x", "y"}},
	} {
		if g := got(placeExploration(tc.items, tc.picks, tc.count)); !slices.Equal(g, tc.want) {
			t.Errorf("got %v, want %v", g, tc.want)
		}
	}
}

func (c *staticCatalog) Range(fn func(catalog.Item) bool) {
	c.mu.Lock()
	items := make([]catalog.Item, 0, len(c.items))
	for _, it := range c.items {
		items = append(items, it)
	}
	c.mu.Unlock()
	for _, it := range items {
		if !fn(it) {
			return
		}
	}
}

// With RunRowState running, catalog changes reach answers through it.
func TestRunRowStateFollowsTheCatalog(t *testing.T) {
	eng, cat, _ := shopEngine(t, 500, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.RunRowState(ctx, 5*time.Millisecond) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunRowState: %v", err)
		}
	}()
	first, err := eng.Recommend(ctx, Request{UserID: "u", Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	best := first.Items[0].ItemID
	it := cat.items[best]
	it.Available = false
	cat.set(it)
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := eng.Recommend(ctx, Request{UserID: "u", Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		if res.Items[0].ItemID != best {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still returned after it became unavailable", best)
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
	if err := eng.RunRowState(ctx, 0); err == nil {
		t.Error("RunRowState(0): got nil error")
	}
}
