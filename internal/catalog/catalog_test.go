package catalog

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/redistest"
)

func newStore(t testing.TB) (*Store, redis.UniversalClient) {
	t.Helper()
	c := redistest.Client(t)
	return NewStore(c, redistest.Prefix(t, c)), c
}

func sameItem(a, b Item) bool {
	return a.ID == b.ID && a.Category == b.Category && a.Price == b.Price && a.Available == b.Available && a.CreatedAt.Equal(b.CreatedAt) &&
		a.ValidFrom.Equal(b.ValidFrom) && a.ValidUntil.Equal(b.ValidUntil) && a.MemberOnly == b.MemberOnly
}

var created = time.Date(2029, 3, 4, 5, 6, 7, 8_000_000, time.UTC)

func upsert(t testing.TB, s *Store, items ...Item) {
	t.Helper()
	if err := s.Upsert(context.Background(), items); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
}

func TestUpsertGet(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	items := []Item{
		{ID: "a", Category: "shoes", Price: 59.9, Available: true, CreatedAt: created},
		{ID: "b|c:{d} e\nf", Category: "with space|and:colon\n", Price: 0, Available: false},
		{ID: "ü✓", Category: "", Price: math.MaxFloat64, Available: true, CreatedAt: time.UnixMilli(-1).UTC()},
		{ID: strings.Repeat("x", MaxIDBytes), Category: strings.Repeat("c", MaxCategoryBytes), Price: 1e-9},
		{ID: "sale", Category: "c", Price: 3, Available: true, ValidFrom: created, ValidUntil: created.Add(time.Hour), MemberOnly: true},
		{ID: "open-end", ValidFrom: created, Available: true},
		{ID: "open-start", ValidUntil: time.UnixMilli(-5).UTC(), MemberOnly: true},
	}
	upsert(t, s, items...)
	// A later upsert replaces, and the last of a batch wins.
	replaced := Item{ID: "a", Category: "boots", Price: 79, Available: false, CreatedAt: created}
	upsert(t, s, Item{ID: "a", Category: "tmp"}, replaced)

	tests := []struct {
		name string
		ids  []string
		want []Item
	}{
		{"all in request order", []string{items[3].ID, "a", items[1].ID, items[2].ID}, []Item{items[3], replaced, items[1], items[2]}},
		{"windows and member flag", []string{"sale", "open-end", "open-start"}, items[4:7]},
		{"missing ids skipped", []string{"nope", items[2].ID, "also-nope"}, []Item{items[2]}},
		{"duplicates kept", []string{"a", "a"}, []Item{replaced, replaced}},
		{"none", nil, nil},
	}
	for _, tc := range tests {
		got, err := s.Get(context.Background(), tc.ids)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !slices.EqualFunc(got, tc.want, sameItem) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}
}

func TestUpsertRejectsInvalid(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	tests := []struct {
		name    string
		item    Item
		wantErr string
	}{
		{"empty id", Item{}, "item id is empty"},
		{"long id", Item{ID: strings.Repeat("x", MaxIDBytes+1)}, "at most 256"},
		{"bad utf-8 id", Item{ID: "\xff"}, "item id is not valid UTF-8"},
		{"bad utf-8 category", Item{ID: "x", Category: "\xc3"}, "category is not valid UTF-8"},
		{"NaN price", Item{ID: "x", Price: math.NaN()}, "price must be a finite number"},
		{"negative price", Item{ID: "x", Price: -1}, "price must be a finite number"},
		{"infinite price", Item{ID: "x", Price: math.Inf(1)}, "price must be a finite number"},
		{"inverted window", Item{ID: "x", ValidFrom: created, ValidUntil: created.Add(-time.Millisecond)}, "sale window ends"},
		{"empty window", Item{ID: "x", ValidFrom: created, ValidUntil: created}, "sale window ends"},
	}
	for _, tc := range tests {
		err := s.Upsert(context.Background(), []Item{{ID: "ok"}, tc.item})
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "item 1") {
			t.Errorf("%s: got %v, want an error about item 1 containing %q", tc.name, err, tc.wantErr)
		}
	}
	if got, _ := s.Get(context.Background(), []string{"ok"}); len(got) != 0 {
		t.Errorf("a rejected batch wrote %+v", got)
	}
}

func TestDecodeRejectsCorrupt(t *testing.T) {
	valid := appendItem(nil, Item{ID: "x", Price: 2, CreatedAt: created, Category: "c"})
	for name, b := range map[string][]byte{
		"empty":          nil,
		"reserved bits":  append([]byte{valid[0] | 0x80}, valid[1:]...),
		"short price":    valid[:5],
		"truncated time": append([]byte{itemHasCreated}, 0x80),
		"truncated end":  append([]byte{itemHasFrom | itemHasUntil}, 0x02),
	} {
		if _, err := decodeItem("x", b); err == nil {
			t.Errorf("%s: got nil error", name)
		}
	}
}

func syncCache(t testing.TB, c *Cache) {
	t.Helper()
	if err := c.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

func TestCacheSync(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	c := NewCache(s, nil)
	if c.Known() || c.Len() != 0 {
		t.Errorf("before Sync: Known %v, Len %d; want false, 0", c.Known(), c.Len())
	}
	syncCache(t, c)
	if c.Known() || c.Len() != 0 {
		t.Errorf("empty catalog: Known %v, Len %d; want false, 0", c.Known(), c.Len())
	}

	a := Item{ID: "a", Category: "x", Price: 1, Available: true}
	b := Item{ID: "b", Category: "y", Price: 2}
	upsert(t, s, a, b)
	v0 := c.Version()
	if _, ok := c.Lookup("a"); ok {
		t.Error("Lookup sees an item before Sync")
	}
	syncCache(t, c)
	if !c.Known() || c.Len() != 2 {
		t.Errorf("after upsert: Known %v, Len %d; want true, 2", c.Known(), c.Len())
	}
	if got, ok := c.Lookup("a"); !ok || !sameItem(got, a) {
		t.Errorf("Lookup(a): got %+v, %v; want %+v", got, ok, a)
	}
	v1 := c.Version()
	if v1 == v0 {
		t.Error("Version did not change with the contents")
	}
	syncCache(t, c)
	if c.Version() != v1 {
		t.Error("Version changed although nothing did")
	}

	a2 := a
	a2.Available = false
	upsert(t, s, a2, Item{ID: "c"})
	syncCache(t, c)
	if got, _ := c.Lookup("a"); !sameItem(got, a2) {
		t.Errorf("Lookup(a) after update: got %+v, want %+v", got, a2)
	}
	if c.Len() != 3 || c.Version() == v1 {
		t.Errorf("after update: Len %d, Version %d (was %d); want 3 and a new version", c.Len(), c.Version(), v1)
	}
	if c.fullLoads != 1 {
		t.Errorf("full loads: got %d, want 1 (the rest incremental)", c.fullLoads)
	}

	// A second cache starting now loads everything at once.
	c2 := NewCache(s, nil)
	syncCache(t, c2)
	if c2.Len() != 3 || !c2.Known() {
		t.Errorf("fresh cache: Len %d, Known %v; want 3, true", c2.Len(), c2.Known())
	}
}

func TestCacheReloadsAfterTrim(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	s.logMaxLen = 10 // Redis trims whole nodes (100 entries) with MAXLEN ~
	c := NewCache(s, nil)
	upsert(t, s, Item{ID: "first", Price: 1})
	syncCache(t, c)

	// Enough single upserts that the entries after the cache's position are
	// trimmed away.
	want := map[string]float64{"first": 2}
	upsert(t, s, Item{ID: "first", Price: 2})
	for i := range 450 {
		id := fmt.Sprint("item-", i)
		upsert(t, s, Item{ID: id, Price: float64(i)})
		want[id] = float64(i)
	}
	if n := rdb.XLen(context.Background(), s.log).Val(); n >= 451 {
		t.Fatalf("changelog has %d entries; the test needs it trimmed", n)
	}
	syncCache(t, c)
	if c.fullLoads != 2 {
		t.Errorf("full loads: got %d, want 2 (the trim must force a reload)", c.fullLoads)
	}
	if c.Len() != len(want) {
		t.Errorf("Len: got %d, want %d", c.Len(), len(want))
	}
	for id, price := range want {
		if got, ok := c.Lookup(id); !ok || got.Price != price {
			t.Errorf("Lookup(%s): got %+v, %v; want price %v", id, got, ok, price)
		}
	}

	// The changelog reset (keys lost): the sequence restarts, which is a gap too.
	rdb.Del(context.Background(), s.log, s.seq)
	upsert(t, s, Item{ID: "after-reset", Price: 3})
	syncCache(t, c)
	if _, ok := c.Lookup("after-reset"); !ok || c.fullLoads != 3 {
		t.Errorf("after a reset: found %v, full loads %d; want true, 3", ok, c.fullLoads)
	}
}

func TestCacheCompactsChanges(t *testing.T) {
	t.Parallel()
	s, rdb := newStore(t)
	c := NewCache(s, nil)
	syncCache(t, c)
	const n = 3000
	for start := 0; start < n; start += 500 {
		var items []Item
		for i := start; i < start+500; i++ {
			items = append(items, Item{ID: fmt.Sprint(i), Price: float64(i)})
		}
		upsert(t, s, items...)
		syncCache(t, c)
	}
	// An item removed behind the store's back (by hand) disappears once the
	// changelog mentions it again.
	rdb.HDel(context.Background(), s.items, "7")
	upsert(t, s, Item{ID: "8", Price: 80})
	rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: s.log, Values: []string{"id", "7", "n", fmt.Sprint(n + 2)}})
	rdb.Incr(context.Background(), s.seq)
	syncCache(t, c)

	snap := c.snap.Load()
	if len(snap.delta) > max(1024, len(snap.base)/4) {
		t.Errorf("delta has %d entries over a base of %d; want it folded in", len(snap.delta), len(snap.base))
	}
	if c.Len() != n-1 {
		t.Errorf("Len: got %d, want %d", c.Len(), n-1)
	}
	for i := range n {
		got, ok := c.Lookup(fmt.Sprint(i))
		switch {
		case i == 7 && ok:
			t.Errorf("Lookup(7): got %+v, want removed", got)
		case i == 8 && (!ok || got.Price != 80):
			t.Errorf("Lookup(8): got %+v, %v; want price 80", got, ok)
		case i != 7 && i != 8 && (!ok || got.Price != float64(i)):
			t.Errorf("Lookup(%d): got %+v, %v", i, got, ok)
		}
	}
	if c.fullLoads != 1 {
		t.Errorf("full loads: got %d, want 1", c.fullLoads)
	}
}

// TestCacheConcurrentLookups runs lookups while syncs publish snapshots;
// with -race it checks that readers and the writer share nothing mutable.
func TestCacheConcurrentLookups(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	c := NewCache(s, nil)
	ctx := context.Background()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if it, ok := c.Lookup(fmt.Sprint(i % 200)); ok && it.ID != fmt.Sprint(i%200) {
					t.Errorf("reader %d: Lookup(%d) returned %q", r, i%200, it.ID)
				}
				_ = c.Len()
			}
		}()
	}
	for round := range 20 {
		var items []Item
		for i := range 10 {
			items = append(items, Item{ID: fmt.Sprint(round*10 + i)})
		}
		if err := s.Upsert(ctx, items); err != nil {
			t.Error(err)
		}
		if err := c.Sync(ctx); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
	if c.Len() != 200 {
		t.Errorf("Len: got %d, want 200", c.Len())
	}
}

func TestCacheRun(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	c := NewCache(s, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, 5*time.Millisecond) }()

	upsert(t, s, Item{ID: "x"})
	deadline := time.Now().Add(10 * time.Second)
	for _, ok := c.Lookup("x"); !ok; _, ok = c.Lookup("x") {
		if time.Now().After(deadline) {
			t.Fatal("Run did not pick up an upsert within 10s")
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: got %v, want nil", err)
	}
	if err := c.Run(context.Background(), 0); err == nil {
		t.Error("Run(0): got nil error")
	}
}

// BenchmarkCacheLookup looks up items of a 100,000-item cache with pending
// changes, the request-path cost per candidate item.
func BenchmarkCacheLookup(b *testing.B) {
	base := make(map[string]Item, 100_000)
	ids := make([]string, 100_000)
	for i := range ids {
		ids[i] = fmt.Sprint("sku-", i)
		base[ids[i]] = Item{ID: ids[i], Available: true}
	}
	c := NewCache(&Store{}, nil)
	c.snap.Store(&snapshot{base: base, delta: map[string]change{ids[5]: {}}, n: len(base), known: true})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := c.Lookup(ids[i%len(ids)]); !ok && i%len(ids) != 5 {
			b.Fatal("missing")
		}
		i++
	}
}

func TestInWindow(t *testing.T) {
	from := created
	until := created.Add(time.Hour)
	tests := []struct {
		name string
		item Item
		at   time.Time
		want bool
	}{
		{"no window", Item{}, from, true},
		{"before start", Item{ValidFrom: from, ValidUntil: until}, from.Add(-time.Millisecond), false},
		{"exactly at start", Item{ValidFrom: from, ValidUntil: until}, from, true},
		{"inside", Item{ValidFrom: from, ValidUntil: until}, from.Add(time.Minute), true},
		{"last instant", Item{ValidFrom: from, ValidUntil: until}, until.Add(-time.Nanosecond), true},
		{"exactly at end", Item{ValidFrom: from, ValidUntil: until}, until, false},
		{"open end", Item{ValidFrom: from}, from.Add(1000 * time.Hour), true},
		{"open start", Item{ValidUntil: until}, time.Unix(0, 0), true},
	}
	for _, tc := range tests {
		if got := tc.item.InWindow(tc.at); got != tc.want {
			t.Errorf("%s: InWindow = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCacheRange(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	c := NewCache(s, nil)
	upsert(t, s, Item{ID: "a"}, Item{ID: "b"}, Item{ID: "c"})
	syncCache(t, c)
	upsert(t, s, Item{ID: "b", Category: "changed"}, Item{ID: "d"}) // delta over the base
	syncCache(t, c)
	got := map[string]string{}
	c.Range(func(it Item) bool {
		if _, dup := got[it.ID]; dup {
			t.Errorf("Range visited %s twice", it.ID)
		}
		got[it.ID] = it.Category
		return true
	})
	want := map[string]string{"a": "", "b": "changed", "c": "", "d": ""}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Range: got %v, want %v", got, want)
	}
	n := 0
	c.Range(func(Item) bool { n++; return n < 2 })
	if n != 2 {
		t.Errorf("Range went on after false: %d calls", n)
	}
}
