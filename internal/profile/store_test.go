package profile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/redisconn"
	"github.com/recsys-dev/recsys/internal/redistest"
)

// clock is an injected, manually advanced clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var t0 = time.Date(2030, 1, 15, 12, 0, 0, 0, time.UTC)

// newStore returns a Store on the test Redis under a fresh prefix, with an
// injected clock at t0 unless cfg.Now is set.
func newStore(t testing.TB, cfg Config) (*Store, redis.UniversalClient, *clock) {
	t.Helper()
	c := redistest.Client(t)
	cfg.Prefix = redistest.Prefix(t, c)
	clk := newClock(t0)
	if cfg.Now == nil {
		cfg.Now = clk.Now
	}
	s, err := NewStore(c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, c, clk
}

// counted is a RecordResult's counts (comparable); record checks Fresh
// against them.
type counted struct{ Accepted, Duplicates int }

func record(t testing.TB, s *Store, events ...event.Event) counted {
	t.Helper()
	res, err := s.Record(context.Background(), events)
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	fresh := 0
	for _, f := range res.Fresh {
		if f {
			fresh++
		}
	}
	if len(res.Fresh) != len(events) || fresh != res.Accepted {
		t.Fatalf("Record: %d fresh flags, %d set, for %d events with %d accepted", len(res.Fresh), fresh, len(events), res.Accepted)
	}
	return counted{res.Accepted, res.Duplicates}
}

func load(t testing.TB, s *Store, user string) Profile {
	t.Helper()
	p, err := s.Load(context.Background(), user)
	if err != nil {
		t.Fatalf("Load(%q): %v", user, err)
	}
	return p
}

func readAll(t testing.TB, s *Store, since, until time.Time) []event.Event {
	t.Helper()
	var out []event.Event
	err := s.ReadEvents(context.Background(), since, until, func(e event.Event) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatalf("ReadEvents: %v", err)
	}
	return out
}

func popular(t testing.TB, s *Store, n int) []ItemScore {
	t.Helper()
	got, err := s.Popular(context.Background(), n)
	if err != nil {
		t.Fatalf("Popular: %v", err)
	}
	return got
}

func sameEvent(a, b event.Event) bool {
	return a.ID == b.ID && a.UserID == b.UserID && a.ItemID == b.ItemID && a.Type == b.Type &&
		a.Time.Equal(b.Time) && a.Quantity == b.Quantity && a.Weight == b.Weight
}

func sameEntry(a, b Entry) bool {
	return a.ItemID == b.ItemID && a.Type == b.Type && a.Time.Equal(b.Time) && a.Quantity == b.Quantity && a.Weight == b.Weight
}

func closeTo(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func entryOf(e event.Event) Entry {
	return Entry{ItemID: e.ItemID, Type: e.Type, Time: e.Time, Quantity: e.Quantity, Weight: e.Weight}
}

func TestRecordBuildsProfile(t *testing.T) {
	t.Parallel()
	const u = "alice"
	ev := func(id, item string, typ event.Type, ago time.Duration, qty int32, w float32) event.Event {
		return event.Event{ID: id, UserID: u, ItemID: item, Type: typ, Time: t0.Add(-ago), Quantity: qty, Weight: w}
	}
	tests := []struct {
		name          string
		events        []event.Event
		wantHistory   []event.Event // newest first
		wantPurchased []Purchase
		wantCount     int64
	}{
		{
			name:   "one view",
			events: []event.Event{ev("e1", "i1", event.View, time.Hour, 0, 0)},
			wantHistory: []event.Event{
				ev("e1", "i1", event.View, time.Hour, 0, 0),
			},
		},
		{
			name: "mixed types out of order, repeated purchase",
			events: []event.Event{
				ev("e1", "i1", event.View, 3*24*time.Hour, 0, 0),
				ev("e3", "i2", event.Purchase, 24*time.Hour, 2, 0),
				ev("e2", "i2", event.AddToCart, 2*24*time.Hour, 1, 0),
				ev("e4", "i3", event.Custom, 10*time.Hour, 0, 2.5),
				ev("e5", "i2", event.Purchase, time.Hour, 7, 0),
				ev("e6", "i1", event.Purchase, 5*time.Hour, 0, 0),
			},
			wantHistory: []event.Event{
				ev("e5", "i2", event.Purchase, time.Hour, 7, 0),
				ev("e6", "i1", event.Purchase, 5*time.Hour, 0, 0),
				ev("e4", "i3", event.Custom, 10*time.Hour, 0, 2.5),
				ev("e3", "i2", event.Purchase, 24*time.Hour, 2, 0),
				ev("e2", "i2", event.AddToCart, 2*24*time.Hour, 1, 0),
				ev("e1", "i1", event.View, 3*24*time.Hour, 0, 0),
			},
			wantPurchased: []Purchase{{"i2", t0.Add(-time.Hour)}, {"i1", t0.Add(-5 * time.Hour)}},
			wantCount:     3,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _, _ := newStore(t, Config{})
			res := record(t, s, tc.events...)
			if want := (counted{Accepted: len(tc.events)}); res != want {
				t.Errorf("Record: got %+v, want %+v", res, want)
			}
			got := load(t, s, u)
			if got.UserID != u {
				t.Errorf("UserID: got %q, want %q", got.UserID, u)
			}
			wantEntries := make([]Entry, len(tc.wantHistory))
			for i, e := range tc.wantHistory {
				wantEntries[i] = entryOf(e)
			}
			if !slices.EqualFunc(got.History, wantEntries, sameEntry) {
				t.Errorf("History:\n got %+v\nwant %+v", got.History, wantEntries)
			}
			if !slices.EqualFunc(got.Purchased, tc.wantPurchased, func(a, b Purchase) bool {
				return a.ItemID == b.ItemID && a.Time.Equal(b.Time)
			}) {
				t.Errorf("Purchased: got %+v, want %+v", got.Purchased, tc.wantPurchased)
			}
			if got.PurchaseCount != tc.wantCount {
				t.Errorf("PurchaseCount: got %d, want %d", got.PurchaseCount, tc.wantCount)
			}
			wantFirst, wantLast := tc.wantHistory[len(tc.wantHistory)-1].Time, tc.wantHistory[0].Time
			if !got.FirstSeen.Equal(wantFirst) || !got.LastSeen.Equal(wantLast) {
				t.Errorf("FirstSeen, LastSeen: got %v, %v, want %v, %v", got.FirstSeen, got.LastSeen, wantFirst, wantLast)
			}

			// Weights must be the shared weighting summed per item.
			w := s.Config().Weighting
			now := t0.Add(time.Hour)
			wantW := map[string]float64{}
			wantN := map[string]int{}
			for _, e := range tc.events {
				wantW[e.ItemID] += w.Of(e, now)
				wantN[e.ItemID]++
			}
			iw := got.ItemWeights(w, now)
			if len(iw) != len(wantW) {
				t.Fatalf("ItemWeights: got %d items, want %d", len(iw), len(wantW))
			}
			for i, x := range iw {
				if !closeTo(x.Weight, wantW[x.ItemID]) || x.Events != wantN[x.ItemID] {
					t.Errorf("ItemWeights[%s]: got weight %v over %d events, want %v over %d", x.ItemID, x.Weight, x.Events, wantW[x.ItemID], wantN[x.ItemID])
				}
				if i > 0 && (iw[i-1].Weight < x.Weight || iw[i-1].Weight == x.Weight && iw[i-1].ItemID > x.ItemID) {
					t.Errorf("ItemWeights not heaviest first: %+v before %+v", iw[i-1], x)
				}
			}
		})
	}
}

func TestItemWeightsAggregates(t *testing.T) {
	w := event.DefaultWeighting()
	p := Profile{UserID: "u", History: []Entry{
		{ItemID: "b", Type: event.View, Time: t0},
		{ItemID: "a", Type: event.Purchase, Time: t0.Add(-30 * 24 * time.Hour), Quantity: 9},
		{ItemID: "b", Type: event.AddToCart, Time: t0.Add(-time.Hour)},
		{ItemID: "c", Type: event.View, Time: t0},
	}}
	got := p.ItemWeights(w, t0)
	// a: 5 × min(9,5) × 2^-1 = 12.5; b: 1 + 3 × 2^(-1h/30d); c: 1.
	want := []ItemWeight{
		{ItemID: "a", Weight: 12.5, LastTime: t0.Add(-30 * 24 * time.Hour), Events: 1},
		{ItemID: "b", Weight: 1 + 3*math.Exp2(-1.0/(30*24)), LastTime: t0, Events: 2},
		{ItemID: "c", Weight: 1, LastTime: t0, Events: 1},
	}
	if !slices.EqualFunc(got, want, func(a, b ItemWeight) bool {
		return a.ItemID == b.ItemID && closeTo(a.Weight, b.Weight) && a.LastTime.Equal(b.LastTime) && a.Events == b.Events
	}) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got := (Profile{}).ItemWeights(w, t0); got != nil {
		t.Errorf("empty profile: got %+v, want nil", got)
	}
}

func TestCapsHold(t *testing.T) {
	t.Parallel()
	s, c, _ := newStore(t, Config{HistoryCap: 5, PurchasedCap: 3, DedupCap: 4})
	const u = "bob"
	var all []event.Event
	for i := range 12 {
		typ := event.View
		if i%2 == 0 {
			typ = event.Purchase
		}
		all = append(all, event.Event{ID: fmt.Sprint("e", i), UserID: u, ItemID: fmt.Sprint("item", i), Type: typ, Time: t0.Add(time.Duration(i) * time.Minute)})
	}
	// In two batches, so trimming works across calls too.
	record(t, s, all[:7]...)
	record(t, s, all[7:]...)
	got := load(t, s, u)

	var wantHist []Entry
	for i := 11; i >= 7; i-- {
		wantHist = append(wantHist, entryOf(all[i]))
	}
	if !slices.EqualFunc(got.History, wantHist, sameEntry) {
		t.Errorf("History: got %+v, want %+v", got.History, wantHist)
	}
	wantBuy := []string{"item10", "item8", "item6"}
	var gotBuy []string
	for _, p := range got.Purchased {
		gotBuy = append(gotBuy, p.ItemID)
	}
	if !slices.Equal(gotBuy, wantBuy) {
		t.Errorf("Purchased: got %v, want %v", gotBuy, wantBuy)
	}
	if got.PurchaseCount != 6 {
		t.Errorf("PurchaseCount: got %d, want 6 (counted, not capped)", got.PurchaseCount)
	}
	if n := c.ZCard(context.Background(), s.keysOf(u).eids).Val(); n != 4 {
		t.Errorf("dedup set: got %d ids, want the cap 4", n)
	}
}

func TestDedupWindow(t *testing.T) {
	t.Parallel()
	s, _, clk := newStore(t, Config{DedupWindow: time.Hour})
	e := event.Event{ID: "e1", UserID: "u", ItemID: "i", Type: event.View}
	record(t, s, e)
	clk.Set(t0.Add(30 * time.Minute))
	if got := record(t, s, e); got != (counted{Duplicates: 1}) {
		t.Errorf("retry inside the window: got %+v, want 1 duplicate", got)
	}
	// Past the window the id is forgotten on the next write and a replay
	// counts again: the window is the promise, not forever.
	clk.Set(t0.Add(2 * time.Hour))
	record(t, s, event.Event{ID: "other", UserID: "u", ItemID: "i", Type: event.View})
	if got := record(t, s, e); got != (counted{Accepted: 1}) {
		t.Errorf("replay after the window: got %+v, want 1 accepted", got)
	}
}

func TestRetriedEventCountsOnce(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, Config{})
	buy := event.Event{ID: "p1", UserID: "u1", ItemID: "shoe", Type: event.Purchase, Time: t0}
	view := event.Event{ID: "v1", UserID: "u2", ItemID: "shoe", Type: event.View, Time: t0}

	tests := []struct {
		name  string
		batch []event.Event
		want  counted
	}{
		{"first", []event.Event{buy, view, buy}, counted{Accepted: 2, Duplicates: 1}},
		{"retry", []event.Event{view, buy}, counted{Duplicates: 2}},
		{"retry with a changed payload", []event.Event{{ID: "p1", UserID: "u1", ItemID: "hat", Type: event.Purchase}}, counted{Duplicates: 1}},
	}
	for _, tc := range tests {
		if got := record(t, s, tc.batch...); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
	p := load(t, s, "u1")
	if len(p.History) != 1 || p.PurchaseCount != 1 || len(p.Purchased) != 1 {
		t.Errorf("profile of u1: got %d history entries, %d purchases counted, %d purchased; want 1, 1, 1", len(p.History), p.PurchaseCount, len(p.Purchased))
	}
	if got := readAll(t, s, time.Time{}, time.Time{}); len(got) != 2 {
		t.Errorf("stream: got %d events, want 2", len(got))
	}
	w := s.Config().Weighting
	want := []ItemScore{{"shoe", (w.Purchase + w.View) * math.Exp2(-float64(t0.Sub(t0.Truncate(time.Hour)))/float64(24*time.Hour))}}
	if got := popular(t, s, 10); len(got) != 1 || got[0].ItemID != want[0].ItemID || !closeTo(got[0].Score, want[0].Score) {
		t.Errorf("popular: got %+v, want %+v", got, want)
	}
}

// TestPartialFailureCompletes runs one half of a Record by hand, as if the
// other half had failed, then retries the whole batch.
func TestPartialFailureCompletes(t *testing.T) {
	t.Parallel()
	events := []event.Event{
		{ID: "a", UserID: "u1", ItemID: "x", Type: event.Purchase, Time: t0},
		{ID: "b", UserID: "u2", ItemID: "x", Type: event.View, Time: t0},
		{ID: "c", UserID: "u2", ItemID: "y", Type: event.AddToCart, Time: t0},
	}
	tests := []struct {
		name  string
		half  func(s *Store, b *batch) []*redisconn.ScriptCall
		retry counted
	}{
		{"only user scripts ran", func(s *Store, b *batch) []*redisconn.ScriptCall { return b.userCalls(s) }, counted{Duplicates: 3}},
		// The stream's script needs the pseudonyms the user scripts return,
		// so it never runs without them; the reverse mappings can be
		// written without the stream's entries.
		{"user scripts and reverse mappings ran", func(s *Store, b *batch) []*redisconn.ScriptCall {
			calls := b.userCalls(s)
			redisconn.RunScripts(context.Background(), s.rdb, calls...)
			pns := map[string]string{}
			for u, c := range calls {
				_, pn, err := parseUserReply(c.Cmd, len(b.users[u].events))
				if err != nil {
					t.Fatal(err)
				}
				pns[b.users[u].id] = pn
			}
			global := b.globalCall(s, pns)
			return global[:len(global)-1]
		}, counted{Duplicates: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _, clk := newStore(t, Config{})
			calls := tc.half(s, s.newBatch(events, clk.Now()))
			redisconn.RunScripts(context.Background(), s.rdb, calls...)
			for _, c := range calls {
				if err := c.Cmd.Err(); err != nil {
					t.Fatal(err)
				}
			}
			if got := record(t, s, events...); got != tc.retry {
				t.Errorf("retry: got %+v, want %+v", got, tc.retry)
			}
			record(t, s, events...) // and once more for good measure

			if got := readAll(t, s, time.Time{}, time.Time{}); len(got) != 3 {
				t.Errorf("stream: got %d events, want 3", len(got))
			}
			w := s.Config().Weighting
			pop := popular(t, s, 10)
			wantX := w.Purchase + w.View
			if len(pop) != 2 || pop[0].ItemID != "x" || !closeTo(pop[0].Score, wantX) {
				t.Errorf("popular: got %+v, want x first with %v", pop, wantX)
			}
			if p := load(t, s, "u2"); len(p.History) != 2 {
				t.Errorf("history of u2: got %d entries, want 2", len(p.History))
			}
			if p := load(t, s, "u1"); p.PurchaseCount != 1 {
				t.Errorf("purchase count of u1: got %d, want 1", p.PurchaseCount)
			}
		})
	}
}

func TestUserKeysHaveTTL(t *testing.T) {
	t.Parallel()
	const ttl = 10 * 24 * time.Hour
	s, c, _ := newStore(t, Config{UserTTL: ttl})
	ctx := context.Background()
	const u = "carol"
	record(t, s, event.Event{ID: "1", UserID: u, ItemID: "i", Type: event.Purchase},
		event.Event{ID: "1i", UserID: u, ItemID: "k", Type: event.Impression},
		event.Event{ID: "1p", UserID: u, ItemID: "k", Type: event.Push},
		event.Event{ID: "1n", UserID: u, ItemID: "n", Type: event.NotInterested},
		event.Event{ID: "1s", UserID: u, Type: event.Search, Matches: event.SearchMatch("brand", "b")})
	keys := s.UserKeys(u)
	wantTTL := func(k string) time.Duration {
		switch k {
		case s.keysOf(u).eids:
			return s.Config().DedupWindow // shorter than the profile's TTL
		case s.keysOf(u).imp:
			return s.Config().ImpressionWindow
		case s.keysOf(u).push:
			return min(s.Config().PushWindow, ttl)
		case s.keysOf(u).dis:
			return min(s.Config().NotInterestedTTL, ttl)
		case s.keysOf(u).pn:
			return max(s.Config().StreamMaxAge, ttl) // as long as the stream keeps the events
		}
		return ttl
	}
	for _, k := range keys {
		got, want := c.PTTL(ctx, k).Val(), wantTTL(k)
		if got <= want-time.Minute || got > want {
			t.Errorf("PTTL %s: got %v, want about %v", k, got, want)
		}
	}
	// Shorten them, then a new event must refresh every one.
	for _, k := range keys {
		c.PExpire(ctx, k, time.Minute)
	}
	// (The impression key is refreshed by impressions only: its entries
	// are stale once none was written for the impression window; the same
	// for pushes and for purchases' orders.)
	record(t, s, event.Event{ID: "2", UserID: u, ItemID: "j", Type: event.View},
		event.Event{ID: "2i", UserID: u, ItemID: "k", Type: event.Impression, Time: t0.Add(time.Second)},
		event.Event{ID: "2p", UserID: u, ItemID: "k", Type: event.Push, Time: t0.Add(time.Second)},
		event.Event{ID: "2b", UserID: u, ItemID: "m", Type: event.Purchase, Time: t0.Add(time.Second)},
		event.Event{ID: "2n", UserID: u, ItemID: "n", Type: event.NotInterested, Time: t0.Add(time.Second)},
		event.Event{ID: "2s", UserID: u, Type: event.Search, Matches: event.SearchMatch("brand", "b")})
	for _, k := range keys {
		if got, want := c.PTTL(ctx, k).Val(), wantTTL(k); got <= want-time.Minute {
			t.Errorf("PTTL %s after a new event: got %v, want refreshed to about %v", k, got, want)
		}
	}
	// A duplicate-only retry refreshes them too (it is activity).
	for _, k := range keys {
		c.PExpire(ctx, k, time.Minute)
	}
	record(t, s, event.Event{ID: "2", UserID: u, ItemID: "j", Type: event.View})
	for _, k := range keys {
		if k == s.keysOf(u).imp || k == s.keysOf(u).push || k == s.keysOf(u).ord || k == s.keysOf(u).dis || k == s.keysOf(u).srch {
			continue
		}
		if got, want := c.PTTL(ctx, k).Val(), wantTTL(k); got <= want-time.Minute {
			t.Errorf("PTTL %s after a retry: got %v, want refreshed to about %v", k, got, want)
		}
	}
}

func TestDeleteRemovesEveryKey(t *testing.T) {
	t.Parallel()
	s, c, _ := newStore(t, Config{})
	ctx := context.Background()
	const u, other = "dave-7f3a", "erin"
	record(t, s,
		event.Event{ID: "1", UserID: u, ItemID: "i", Type: event.Purchase},
		event.Event{ID: "2", UserID: u, ItemID: "j", Type: event.View},
		event.Event{ID: "3", UserID: other, ItemID: "j", Type: event.View},
	)
	n, err := s.Delete(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if n != 6 { // hist, buy, meta, eids, ord, pn
		t.Errorf("Delete: got %d keys, want 6", n)
	}
	keys, err := redistest.Keys(ctx, c, s.Config().Prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, u) {
			t.Errorf("key %q of the deleted user remains", k)
		}
	}
	if p := load(t, s, u); p.History != nil || p.PurchaseCount != 0 || !p.FirstSeen.IsZero() {
		t.Errorf("profile after Delete: got %+v, want empty", p)
	}
	if p := load(t, s, other); len(p.History) != 1 {
		t.Errorf("another user's profile was touched: %+v", p)
	}
	if n, err := s.Delete(ctx, u); err != nil || n != 0 {
		t.Errorf("second Delete: got %d, %v; want 0, nil", n, err)
	}
}

func TestLoadUnknownUser(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, Config{})
	got := load(t, s, "nobody")
	if got.UserID != "nobody" || got.History != nil || got.Purchased != nil || got.PurchaseCount != 0 || !got.FirstSeen.IsZero() || !got.LastSeen.IsZero() {
		t.Errorf("got %+v, want an empty profile of nobody", got)
	}
	if _, err := s.Load(context.Background(), ""); err == nil {
		t.Error("Load(\"\"): got nil error")
	}
}

// Popular finds the top n without building the union of the past and the
// current bucket: its answer must equal the full union's, for skewed and
// for heavily tied counts, for n below and above the number of items, and
// when the current bucket or the past is empty.
func TestPopularMatchesTheFullUnion(t *testing.T) {
	t.Parallel()
	const bucket, window = time.Hour, 4 * time.Hour
	tests := []struct {
		name                string
		pastItems, curItems int
		score               func(rng *rand.Rand) float64
		n                   int
	}{
		{"skewed", 3000, 2000, func(rng *rand.Rand) float64 { return math.Floor(1000 / float64(1+rng.IntN(1000))) }, 100},
		{"ties", 3000, 3000, func(rng *rand.Rand) float64 { return float64(1 + rng.IntN(3)) }, 250},
		{"current dominates", 500, 3000, func(rng *rand.Rand) float64 { return rng.Float64() * 10 }, 1000},
		{"n above the items", 40, 30, func(rng *rand.Rand) float64 { return rng.Float64() }, 1000},
		{"no current bucket", 2000, 0, func(rng *rand.Rand) float64 { return rng.Float64() }, 50},
		{"no past", 0, 2000, func(rng *rand.Rand) float64 { return rng.Float64() }, 50},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c, clk := newStore(t, Config{PopularityBucket: bucket, PopularityWindow: window, PopularityHalfLife: 2 * time.Hour})
			ctx := context.Background()
			now := t0.Truncate(bucket).Add(20 * time.Minute)
			clk.Set(now)
			current, past := s.pastBuckets(now.UnixMilli())
			_, factorS, weightsS := s.decay(now.UnixMilli(), current, len(past))
			factor, _ := strconv.ParseFloat(factorS, 64)
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			want := map[string]float64{}
			fill := func(key string, items int, w float64) {
				if items == 0 {
					return
				}
				z := make([]redis.Z, items)
				for j := range z {
					id := "sku-" + strconv.Itoa(rng.IntN(2*max(tc.pastItems, tc.curItems)))
					z[j] = redis.Z{Member: id, Score: tc.score(rng)}
				}
				if err := c.ZAdd(ctx, key, z...).Err(); err != nil {
					t.Fatal(err)
				}
				scores, err := c.ZRangeWithScores(ctx, key, 0, -1).Result()
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range scores {
					want[m.Member.(string)] += m.Score * w * factor
				}
			}
			fill(s.popularityKey(current), tc.curItems, 1)
			for k, key := range past {
				w, _ := strconv.ParseFloat(weightsS[k].(string), 64)
				fill(key, tc.pastItems/len(past), w)
			}
			all := make([]ItemScore, 0, len(want))
			for id, sc := range want {
				all = append(all, ItemScore{id, sc})
			}
			slices.SortFunc(all, func(a, b ItemScore) int { return cmp.Compare(b.Score, a.Score) })
			got := popular(t, s, tc.n)
			if wantN := min(tc.n, len(all)); len(got) != wantN {
				t.Fatalf("got %d items, want %d", len(got), wantN)
			}
			for k, it := range got {
				// Ties at a score may come in any order: each rank's score
				// must be the full union's, and each item's its own.
				if !closeTo(it.Score, all[k].Score) || !closeTo(it.Score, want[it.ItemID]) {
					t.Fatalf("rank %d: got %s %.6f (its sum %.6f), want score %.6f", k, it.ItemID, it.Score, want[it.ItemID], all[k].Score)
				}
			}
		})
	}
}

func TestPopularDecaysAcrossBuckets(t *testing.T) {
	t.Parallel()
	const (
		bucket   = time.Hour
		window   = 4 * time.Hour
		halfLife = 2 * time.Hour
	)
	s, c, clk := newStore(t, Config{PopularityBucket: bucket, PopularityWindow: window, PopularityHalfLife: halfLife})
	ctx := context.Background()
	day := t0.Truncate(24 * time.Hour)
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	w := s.Config().Weighting

	clk.Set(at(0, 30))
	record(t, s,
		event.Event{ID: "1", UserID: "u", ItemID: "a", Type: event.View},
		event.Event{ID: "2", UserID: "u", ItemID: "b", Type: event.Purchase},
	)
	clk.Set(at(2, 15))
	record(t, s,
		event.Event{ID: "3", UserID: "v", ItemID: "b", Type: event.View},
		event.Event{ID: "4", UserID: "v", ItemID: "c", Type: event.AddToCart, Quantity: 2},
		// Older than the window: not counted.
		event.Event{ID: "5", UserID: "v", ItemID: "old", Type: event.Purchase, Time: at(2, 15).Add(-5 * time.Hour)},
		// From the future (clock skew): counted in the current bucket.
		event.Event{ID: "6", UserID: "v", ItemID: "future", Type: event.AddToCart, Time: at(5, 0)},
	)
	// The bucket of 02:00 leaves the window at 06:00.
	key := s.popularityKey(at(2, 0).UnixMilli())
	if got, want := c.PTTL(ctx, key).Val(), at(6, 0).Sub(at(2, 15)); got > want || got < want-time.Minute {
		t.Errorf("PTTL of bucket 02:00: got %v, want about %v", got, want)
	}

	decay := func(now, start time.Time) float64 { return math.Exp2(-float64(now.Sub(start)) / float64(halfLife)) }
	late := event.Event{ID: "7", UserID: "v", ItemID: "late", Type: event.AddToCart, Time: at(3, 30)}
	tests := []struct {
		now    time.Time
		record []event.Event // recorded at now before Popular
		n      int
		want   []ItemScore
	}{
		{at(3, 45), nil, 10, []ItemScore{
			{"c", 6 * decay(at(3, 45), at(2, 0))},
			{"b", w.Purchase*decay(at(3, 45), at(0, 0)) + w.View*decay(at(3, 45), at(2, 0))},
			{"future", w.AddToCart * decay(at(3, 45), at(2, 0))},
			{"a", w.View * decay(at(3, 45), at(0, 0))},
		}},
		{at(3, 45), nil, 2, []ItemScore{
			{"c", 6 * decay(at(3, 45), at(2, 0))},
			{"b", w.Purchase*decay(at(3, 45), at(0, 0)) + w.View*decay(at(3, 45), at(2, 0))},
		}},
		// At 04:10 the bucket of 00:00 has left the window.
		{at(4, 10), nil, 10, []ItemScore{
			{"c", 6 * decay(at(4, 10), at(2, 0))},
			{"future", w.AddToCart * decay(at(4, 10), at(2, 0))},
			{"b", w.View * decay(at(4, 10), at(2, 0))},
		}},
		// A late event lands in the past bucket of 03:00, whose sum is
		// cached until the next bucket begins.
		{at(4, 20), []event.Event{late}, 10, []ItemScore{
			{"c", 6 * decay(at(4, 20), at(2, 0))},
			{"future", w.AddToCart * decay(at(4, 20), at(2, 0))},
			{"b", w.View * decay(at(4, 20), at(2, 0))},
		}},
		{at(5, 5), nil, 10, []ItemScore{
			{"c", 6 * decay(at(5, 5), at(2, 0))},
			{"late", w.AddToCart * decay(at(5, 5), at(3, 0))},
			{"future", w.AddToCart * decay(at(5, 5), at(2, 0))},
			{"b", w.View * decay(at(5, 5), at(2, 0))},
		}},
		{at(6, 0), nil, 10, []ItemScore{{"late", w.AddToCart * decay(at(6, 0), at(3, 0))}}},
		{at(7, 0), nil, 10, nil},
	}
	for _, tc := range tests {
		clk.Set(tc.now)
		if tc.record != nil {
			record(t, s, tc.record...)
		}
		got := popular(t, s, tc.n)
		if !slices.EqualFunc(got, tc.want, func(a, b ItemScore) bool { return a.ItemID == b.ItemID && closeTo(a.Score, b.Score) }) {
			t.Errorf("Popular(%d) at %s:\n got %+v\nwant %+v", tc.n, tc.now.Format("15:04"), got, tc.want)
		}
	}
	if _, err := s.Popular(ctx, 0); err == nil {
		t.Error("Popular(0): got nil error")
	}
}

func TestReadEventsWindow(t *testing.T) {
	t.Parallel()
	s, _, clk := newStore(t, Config{})
	t1, t2, t3 := t0, t0.Add(time.Minute), t0.Add(2*time.Minute)

	clk.Set(t1)
	b1 := []event.Event{
		{ID: "1", UserID: "u", ItemID: "a", Type: event.View, Time: t1.Add(-time.Second)},
		{ID: "2", UserID: "v", ItemID: "b", Type: event.Custom, Weight: 0.375, Time: t1},
	}
	record(t, s, b1...)
	clk.Set(t2)
	b2 := []event.Event{
		{ID: "3", UserID: "u", ItemID: "c", Type: event.Purchase, Quantity: 3, Time: t2.Add(-time.Millisecond)},
		{ID: "4", UserID: "w", ItemID: "a", Type: event.AddToCart},
	}
	record(t, s, b2...)
	b2[1].Time = t2 // a zero time means the Store's clock
	clk.Set(t3)
	b3 := []event.Event{
		// Late: happened before t1 but recorded at t3.
		{ID: "5", UserID: "u", ItemID: "d", Type: event.View, Time: t1.Add(-time.Hour)},
	}
	record(t, s, b3...)

	cat := func(bs ...[]event.Event) []event.Event { return slices.Concat(bs...) }
	tests := []struct {
		name         string
		since, until time.Time
		want         []event.Event
	}{
		{"all", time.Time{}, time.Time{}, cat(b1, b2, b3)},
		{"second batch", t2, t3, b2},
		{"since only", t2, time.Time{}, cat(b2, b3)},
		{"until only", time.Time{}, t2, b1},
		{"late event by recording time", t3, t3.Add(time.Millisecond), b3},
		{"event time window does not select", t1.Add(-2 * time.Hour), t1, nil},
		{"empty window", t2, t2, nil},
		{"inverted window", t3, t1, nil},
	}
	for _, tc := range tests {
		got := readAll(t, s, tc.since, tc.until)
		if !slices.EqualFunc(got, tc.want, sameEvent) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.name, got, tc.want)
		}
	}

	stop := errors.New("stop")
	n := 0
	err := s.ReadEvents(context.Background(), time.Time{}, time.Time{}, func(event.Event) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("callback error: got %v after %d calls, want %v after 1", err, n, stop)
	}
}

func TestReadEventsPages(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, Config{})
	const n = 2*readPage + 17
	events := make([]event.Event, n)
	for i := range events {
		events[i] = event.Event{ID: fmt.Sprint(i), UserID: fmt.Sprint("u", i%7), ItemID: fmt.Sprint("i", i%13), Type: event.View, Time: t0}
	}
	record(t, s, events...)
	got := readAll(t, s, time.Time{}, time.Time{})
	if len(got) != n {
		t.Fatalf("got %d events, want %d", len(got), n)
	}
	seen := make(map[string]bool, n)
	for _, e := range got {
		seen[e.ID] = true
	}
	if len(seen) != n {
		t.Errorf("got %d distinct events, want %d", len(seen), n)
	}
}

func TestSpecialIDsRoundTrip(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, Config{})
	items := []string{
		"a|b", "a:b:c", "{x}", "}", "{", "with space", "line\nbreak", "tab\tand\r\n", "ünïcødé ✓", "%7D", "\x00\x01\x7f",
		strings.Repeat("z", MaxIDBytes),
	}
	users := []string{"}lead", "mid}dle", "{tag}", "%7D", "}", "u s\ne|r:1"}
	var events []event.Event
	for ui, u := range users {
		for ii, it := range items {
			events = append(events, event.Event{
				ID: fmt.Sprintf("e|%d:%d\n", ui, ii), UserID: u, ItemID: it, Type: event.Purchase,
				Time: t0.Add(time.Duration(ii) * time.Second),
			})
		}
	}
	if got := record(t, s, events...); got.Accepted != len(events) {
		t.Fatalf("Record: got %+v, want %d accepted", got, len(events))
	}
	for _, u := range users {
		p := load(t, s, u)
		var got []string
		for _, h := range p.History {
			got = append(got, h.ItemID)
		}
		want := slices.Clone(items)
		slices.Reverse(want)
		if !slices.Equal(got, want) {
			t.Errorf("history item ids of %q:\n got %q\nwant %q", u, got, want)
		}
		got = got[:0]
		for _, pu := range p.Purchased {
			got = append(got, pu.ItemID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("purchased item ids of %q:\n got %q\nwant %q", u, got, want)
		}
	}
	if got := readAll(t, s, time.Time{}, time.Time{}); !slices.EqualFunc(got, events, sameEvent) {
		t.Errorf("stream round trip differs:\n got %+v\nwant %+v", got, events)
	}
	var popIDs []string
	for _, p := range popular(t, s, 100) {
		popIDs = append(popIDs, p.ItemID)
	}
	slices.Sort(popIDs)
	want := slices.Sorted(slices.Values(items))
	if !slices.Equal(popIDs, want) {
		t.Errorf("popular item ids:\n got %q\nwant %q", popIDs, want)
	}
}

// hashTag is the part of a key Redis Cluster hashes.
func hashTag(key string) string {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return key
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return key
	}
	return key[i+1 : i+1+j]
}

func TestUserKeysShareOneHashTag(t *testing.T) {
	s, err := NewStore(redis.NewClient(&redis.Options{}), Config{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, u := range []string{"alice", "}x", "x}", "a}b{c}", "%7D", "}", "{", "%", "%25"} {
		keys := s.UserKeys(u)
		if len(keys) != 10 {
			t.Fatalf("UserKeys(%q): got %d keys, want 10", u, len(keys))
		}
		tag := hashTag(keys[0])
		for _, k := range keys {
			if got := hashTag(k); got != tag || got == k {
				t.Errorf("UserKeys(%q): key %q hashes %q, want the shared tag %q", u, k, got, tag)
			}
			if prev, ok := seen[k]; ok {
				t.Errorf("key %q belongs to both %q and %q", k, prev, u)
			}
			seen[k] = u
		}
	}
	if got := hashTag(s.stream); got != "g" {
		t.Errorf("stream key %q: tag %q, want g", s.stream, got)
	}
}

func TestRecordRejectsInvalidEvents(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, Config{})
	good := event.Event{ID: "ok", UserID: "u", ItemID: "i", Type: event.View}
	with := func(f func(*event.Event)) event.Event { e := good; f(&e); return e }
	tests := []struct {
		name    string
		e       event.Event
		wantErr string
	}{
		{"empty event id", with(func(e *event.Event) { e.ID = "" }), "event id is empty"},
		{"empty user id", with(func(e *event.Event) { e.UserID = "" }), "user id is empty"},
		{"empty item id", with(func(e *event.Event) { e.ItemID = "" }), "item id is empty"},
		{"long item id", with(func(e *event.Event) { e.ItemID = strings.Repeat("x", MaxIDBytes+1) }), "item id is 257 bytes"},
		{"bad utf-8", with(func(e *event.Event) { e.UserID = "\xff" }), "user id is not valid UTF-8"},
		{"unspecified type", with(func(e *event.Event) { e.Type = event.TypeUnspecified }), "unknown event type 0"},
		{"unknown type", with(func(e *event.Event) { e.Type = 99 }), "unknown event type 99"},
		{"negative quantity", with(func(e *event.Event) { e.Quantity = -1 }), "quantity must be >= 0"},
		{"NaN weight", with(func(e *event.Event) { e.Type, e.Weight = event.Custom, float32(math.NaN()) }), "weight must be a finite number"},
		{"custom without weight", with(func(e *event.Event) { e.Type = event.Custom }), "custom event needs a weight"},
	}
	for _, tc := range tests {
		_, err := s.Record(context.Background(), []event.Event{good, tc.e})
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "event 1") {
			t.Errorf("%s: got error %v, want one about event 1 containing %q", tc.name, err, tc.wantErr)
		}
	}
	if p := load(t, s, "u"); p.History != nil {
		t.Errorf("a rejected batch wrote %d history entries", len(p.History))
	}
	if got, err := s.Record(context.Background(), nil); err != nil || got.Accepted+got.Duplicates != 0 {
		t.Errorf("empty batch: got %+v, %v", got, err)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"defaults", Config{}, ""},
		{"braces in prefix", Config{Prefix: "a{b}"}, "must not contain"},
		{"negative cap", Config{HistoryCap: -1}, "history cap must be >= 1"},
		{"negative ttl", Config{UserTTL: -time.Hour}, "user TTL must be >= 1ms"},
		{"sub-second bucket", Config{PopularityBucket: time.Millisecond}, "popularity bucket must be >= 1s"},
		{"window shorter than bucket", Config{PopularityBucket: 2 * time.Hour, PopularityWindow: time.Hour}, "must be >= the bucket width"},
		{"too many buckets", Config{PopularityBucket: time.Second, PopularityWindow: 24 * time.Hour}, "more than 3000"},
		{"bad weighting", Config{Weighting: event.Weighting{View: -1, MaxQuantity: 1}}, "weighting"},
	}
	for _, tc := range tests {
		err := tc.cfg.WithDefaults().Validate()
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: got %v, want error containing %q", tc.name, err, tc.wantErr)
		}
	}
	got := Config{}.WithDefaults()
	if got.HistoryCap != 200 || got.PurchasedCap != 500 || got.UserTTL != 180*24*time.Hour || got.StreamMaxAge != 90*24*time.Hour ||
		got.Weighting != event.DefaultWeighting() || got.Prefix != "recsys" || got.Now == nil {
		t.Errorf("defaults: got %+v", got)
	}
	if _, err := NewStore(nil, Config{}); err == nil {
		t.Error("NewStore(nil): got nil error")
	}
}

func TestLateEventsKeepOrder(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, Config{})
	const u = "late"
	now := event.Event{ID: "1", UserID: u, ItemID: "i", Type: event.Purchase, Time: t0}
	lateBuy := event.Event{ID: "2", UserID: u, ItemID: "i", Type: event.Purchase, Time: t0.Add(-2 * time.Hour)}
	lateView := event.Event{ID: "3", UserID: u, ItemID: "j", Type: event.View, Time: t0.Add(-3 * time.Hour)}
	newer := event.Event{ID: "4", UserID: u, ItemID: "k", Type: event.View, Time: t0.Add(time.Hour)}
	// In an order where both a newer and an older batch follow each other.
	for _, e := range []event.Event{now, lateView, newer, lateBuy} {
		record(t, s, e)
	}

	got := load(t, s, u)
	wantHist := []Entry{entryOf(newer), entryOf(now), entryOf(lateBuy), entryOf(lateView)}
	if !slices.EqualFunc(got.History, wantHist, sameEntry) {
		t.Errorf("History: got %+v, want %+v", got.History, wantHist)
	}
	if len(got.Purchased) != 1 || !got.Purchased[0].Time.Equal(t0) {
		t.Errorf("Purchased: got %+v, want i at %v (the latest purchase)", got.Purchased, t0)
	}
	if !got.FirstSeen.Equal(lateView.Time) || !got.LastSeen.Equal(newer.Time) {
		t.Errorf("FirstSeen, LastSeen: got %v, %v, want %v, %v", got.FirstSeen, got.LastSeen, lateView.Time, newer.Time)
	}
	if got.PurchaseCount != 2 {
		t.Errorf("PurchaseCount: got %d, want 2", got.PurchaseCount)
	}
}

// TestStreamIDFallback covers a stream whose last generated id is ahead of
// both the clock and its last entry (entries deleted): Redis then picks the
// id and the event is still appended.
func TestStreamIDFallback(t *testing.T) {
	t.Parallel()
	s, c, _ := newStore(t, Config{})
	ctx := context.Background()
	ahead := strconv.FormatInt(t0.Add(time.Hour).UnixMilli(), 10) + "-0"
	if err := c.XAdd(ctx, &redis.XAddArgs{Stream: s.stream, ID: ahead, Values: []string{"x", "y"}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.XDel(ctx, s.stream, ahead).Err(); err != nil {
		t.Fatal(err)
	}
	e := event.Event{ID: "1", UserID: "u", ItemID: "i", Type: event.View, Time: t0}
	record(t, s, e)
	if got := readAll(t, s, time.Time{}, time.Time{}); !slices.EqualFunc(got, []event.Event{e}, sameEvent) {
		t.Errorf("got %+v, want %+v", got, e)
	}
}

// A deleted user's events already in the stream never reach the trainer,
// while events the user sends after the deletion do.
func TestReadEventsSkipsDeletedUsers(t *testing.T) {
	t.Parallel()
	s, _, clk := newStore(t, Config{})
	ctx := context.Background()
	t0 := clk.Now()
	record(t, s,
		event.Event{ID: "1", UserID: "gone", ItemID: "i", Type: event.View, Time: t0},
		event.Event{ID: "2", UserID: "stays", ItemID: "i", Type: event.View, Time: t0},
	)
	clk.Set(t0.Add(time.Second))
	if _, err := s.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(2 * time.Second))
	record(t, s, event.Event{ID: "3", UserID: "gone", ItemID: "j", Type: event.View, Time: clk.Now()})
	var got []string
	if err := s.ReadEvents(ctx, time.Time{}, time.Time{}, func(e event.Event) error {
		got = append(got, e.UserID+"/"+e.ItemID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"stays/i", "gone/j"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
