package profile

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/event"
)

// TestEmbeddedStoreSupportsCommands runs the Store on miniredis, the
// in-process Redis of the `recsysd` demo mode, to catch commands or script
// features miniredis lacks. It is the only test here not on a real Redis;
// behaviour is tested against real Redis by the other tests. It also covers
// the EVALSHA -> EVAL fallback, since a fresh miniredis knows no scripts.
func TestEmbeddedStoreSupportsCommands(t *testing.T) {
	m := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	clk := newClock(t0)
	s, err := NewStore(c, Config{Now: clk.Now, StreamMaxLen: 3})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	events := []event.Event{
		{ID: "1", UserID: "u}1", ItemID: "a", Type: event.View},
		{ID: "2", UserID: "u}1", ItemID: "b", Type: event.Purchase, Quantity: 2},
		{ID: "3", UserID: "u2", ItemID: "b", Type: event.Custom, Weight: 0.5},
		{ID: "3", UserID: "u2", ItemID: "b", Type: event.Custom, Weight: 0.5},
		{ID: "5", UserID: "u}1", ItemID: "c", Type: event.Push},
	}
	res, err := s.Record(ctx, events)
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	if want := (counted{Accepted: 4, Duplicates: 1}); (counted{res.Accepted, res.Duplicates}) != want {
		t.Errorf("Record: got %+v, want %+v", res, want)
	}
	clk.Set(t0.Add(time.Second))
	if res, err = s.Record(ctx, events[1:2]); err != nil || res.Duplicates != 1 {
		t.Errorf("retry: got %+v, %v; want 1 duplicate", res, err)
	}
	// Clock behind the stream's last id: must still append (id continues).
	clk.Set(t0.Add(-time.Minute))
	if _, err := s.Record(ctx, []event.Event{{ID: "4", UserID: "u2", ItemID: "c", Type: event.View}}); err != nil {
		t.Fatalf("Record with a clock behind the stream: %v", err)
	}
	clk.Set(t0.Add(time.Second))

	p, err := s.Load(ctx, "u}1")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(p.History) != 2 || len(p.Purchased) != 1 || p.PurchaseCount != 1 || !p.FirstSeen.Equal(t0) ||
		len(p.Pushed) != 1 || len(p.Orders) != 1 {
		t.Errorf("Load: got %+v", p)
	}
	pop, err := s.Popular(ctx, 1)
	if err != nil {
		t.Fatalf("Popular: %v", err)
	}
	if len(pop) != 1 || pop[0].ItemID != "b" {
		t.Errorf("Popular: got %+v, want b first", pop)
	}
	var read []event.Event
	if err := s.ReadEvents(ctx, t0.Add(-time.Hour), time.Time{}, func(e event.Event) error {
		read = append(read, e)
		return nil
	}); err != nil {
		t.Fatalf("ReadEvents: %v", err)
	}
	if len(read) != 3 || read[2].ID != "4" { // MAXLEN 3 trimmed the first
		t.Errorf("ReadEvents: got %+v, want events 2, 3, 4", read)
	}
	// Impressions (and a click resetting them), opt-out, trending and
	// per-item popularity use more script features.
	if _, err := s.Record(ctx, []event.Event{
		{ID: "i1", UserID: "u}1", ItemID: "x", Type: event.Impression},
		{ID: "i2", UserID: "u}1", ItemID: "x", Type: event.Impression, Time: t0.Add(2 * time.Second)},
		{ID: "i3", UserID: "u}1", ItemID: "y", Type: event.Impression},
		{ID: "c1", UserID: "u}1", ItemID: "y", Type: event.View, Time: t0.Add(3 * time.Second)},
	}); err != nil {
		t.Fatalf("Record impressions: %v", err)
	}
	if p, err := s.Load(ctx, "u}1"); err != nil || len(p.Impressions) != 1 || len(p.Impressions[0].Times) != 2 {
		t.Errorf("Load impressions: got %+v, %v", p.Impressions, err)
	}
	if _, err := s.Trending(ctx, 5); err != nil {
		t.Errorf("Trending: %v", err)
	}
	if got, err := s.PopularityOf(ctx, []string{"b", "zz"}); err != nil || len(got) != 2 || got[0] <= 0 || got[1] != 0 {
		t.Errorf("PopularityOf: got %v, %v", got, err)
	}
	if err := s.SetOptOut(ctx, "u2", true); err != nil {
		t.Fatalf("SetOptOut: %v", err)
	}
	if _, err := s.Record(ctx, []event.Event{{ID: "o1", UserID: "u2", ItemID: "q", Type: event.Purchase}}); err != nil {
		t.Fatalf("Record of an opted-out user: %v", err)
	}
	if p, err := s.Load(ctx, "u2"); err != nil || !p.OptedOut || p.History != nil || len(p.Purchased) != 1 {
		t.Errorf("Load of an opted-out user: got %+v, %v", p, err)
	}
	if n, err := s.Delete(ctx, "u}1"); err != nil || n != 8 {
		t.Errorf("Delete: got %d, %v; want 8, nil", n, err)
	}
	for _, k := range s.UserKeys("u}1") {
		if m.Exists(k) {
			t.Errorf("key %q survived Delete", k)
		}
	}
}
