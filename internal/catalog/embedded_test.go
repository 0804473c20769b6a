package catalog

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// TestEmbeddedCatalogSupportsCommands runs Store and Cache on miniredis, the
// in-process Redis of the demo mode, to catch commands it lacks. Behaviour
// is tested against real Redis by the other tests.
func TestEmbeddedCatalogSupportsCommands(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	s := NewStore(rdb, "demo")
	s.logMaxLen = 2
	ctx := context.Background()
	c := NewCache(s, nil)
	if err := c.Sync(ctx); err != nil {
		t.Fatalf("Sync of an empty catalog: %v", err)
	}
	if err := s.Upsert(ctx, []Item{{ID: "a", Price: 1}, {ID: "b", Category: "x"}}); err != nil {
		t.Fatalf("Upsert: %v", err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatalf("incremental Sync: %v", err)
	}
	if got, err := s.Get(ctx, []string{"b", "a"}); err != nil || len(got) != 2 || got[0].ID != "b" {
		t.Errorf("Get: got %+v, %v", got, err)
	}
	for _, id := range []string{"c", "d", "e"} {
		if err := s.Upsert(ctx, []Item{{ID: id}}); err != nil {
			t.Fatalf("Upsert: %v", err)
		}
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatalf("Sync after trim: %v", err)
	}
	if c.Len() != 5 || !c.Known() || c.fullLoads != 2 {
		t.Errorf("after trim: Len %d, Known %v, full loads %d; want 5, true, 2", c.Len(), c.Known(), c.fullLoads)
	}
	rc := NewRulesCache(s, nil)
	for _, f := range []func() error{
		func() error { _, err := s.SetBlocklist(ctx, []string{"a"}, []string{"x"}); return err },
		func() error { _, err := s.AddToBlocklist(ctx, []string{"b"}, nil); return err },
		func() error { _, err := s.RemoveFromBlocklist(ctx, []string{"a"}, nil); return err },
		func() error { return s.UpsertCategories(ctx, []Category{{Name: "x", RepeatableAfter: 1000}}) },
		func() error { return rc.Sync(ctx) },
	} {
		if err := f(); err != nil {
			t.Fatalf("rules on the embedded store: %v", err)
		}
	}
	if r := rc.Rules(); !r.Blocked("b", "") || r.Blocked("a", "") || !r.Blocked("z", "x") {
		t.Errorf("rules on the embedded store: %+v", r)
	}
}
