package catalog

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"
)

func TestBlocklist(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	c := NewRulesCache(s, nil)
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if r := c.Rules(); r.Version != 0 || r.Blocked("a", "x") {
		t.Fatalf("empty rules: %+v", r)
	}
	steps := []struct {
		name             string
		do               func() (BlocklistSummary, error)
		wantItems, wantC []string
	}{
		{"add", func() (BlocklistSummary, error) { return s.AddToBlocklist(ctx, []string{"a", "b"}, []string{"knives"}) },
			[]string{"a", "b"}, []string{"knives"}},
		{"add again is idempotent", func() (BlocklistSummary, error) { return s.AddToBlocklist(ctx, []string{"b", "c"}, nil) },
			[]string{"a", "b", "c"}, []string{"knives"}},
		{"remove, unknown ignored", func() (BlocklistSummary, error) {
			return s.RemoveFromBlocklist(ctx, []string{"a", "zz"}, []string{"nope"})
		}, []string{"b", "c"}, []string{"knives"}},
		{"set replaces", func() (BlocklistSummary, error) { return s.SetBlocklist(ctx, []string{"x"}, []string{"guns", "ammo"}) },
			[]string{"x"}, []string{"ammo", "guns"}},
		{"set empty clears", func() (BlocklistSummary, error) { return s.SetBlocklist(ctx, nil, nil) }, []string{}, []string{}},
	}
	var lastVersion int64
	for _, st := range steps {
		sum, err := st.do()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if sum.Items != len(st.wantItems) || sum.Categories != len(st.wantC) || sum.Version <= lastVersion {
			t.Errorf("%s: summary %+v, want %d items %d categories and a version above %d", st.name, sum, len(st.wantItems), len(st.wantC), lastVersion)
		}
		lastVersion = sum.Version
		if err := c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		r := c.Rules()
		items, cats := r.SortedBlocklist()
		if !slices.Equal(items, st.wantItems) || !slices.Equal(cats, st.wantC) || r.Version != sum.Version {
			t.Errorf("%s: cache has %v %v v%d, want %v %v v%d", st.name, items, cats, r.Version, st.wantItems, st.wantC, sum.Version)
		}
	}
	if _, err := s.SetBlocklist(ctx, []string{"i1"}, []string{"cat"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r := c.Rules()
	for _, tc := range []struct {
		id, cat string
		want    bool
	}{{"i1", "", true}, {"i1", "other", true}, {"i2", "cat", true}, {"i2", "other", false}, {"i2", "", false}} {
		if got := r.Blocked(tc.id, tc.cat); got != tc.want {
			t.Errorf("Blocked(%q, %q) = %v, want %v", tc.id, tc.cat, got, tc.want)
		}
	}
}

func TestBlocklistLimits(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	many := make([]string, MaxBlockedCategories)
	for i := range many {
		many[i] = "c" + strconv.Itoa(i)
	}
	if _, err := s.SetBlocklist(ctx, nil, many); err != nil {
		t.Fatal(err)
	}
	// One more category is refused, and nothing of the call is written.
	if _, err := s.AddToBlocklist(ctx, []string{"item"}, []string{"one-more"}); !errors.Is(err, ErrRulesFull) {
		t.Fatalf("add past the limit: got %v, want ErrRulesFull", err)
	}
	// Re-adding existing entries is within the limit.
	sum, err := s.AddToBlocklist(ctx, []string{"item"}, many[:3])
	if err != nil || sum.Categories != MaxBlockedCategories || sum.Items != 1 {
		t.Fatalf("re-add: %+v %v", sum, err)
	}
	if _, err := s.SetBlocklist(ctx, nil, append(many, "x")); !errors.Is(err, ErrRulesFull) {
		t.Errorf("set past the limit: got %v, want ErrRulesFull", err)
	}
	for _, bad := range [][]string{{""}, {"\xff"}, {string(make([]byte, MaxCategoryBytes+1))}} {
		if _, err := s.AddToBlocklist(ctx, nil, bad); err == nil {
			t.Errorf("category %q accepted", bad)
		}
	}
}

func TestCategories(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	c := NewRulesCache(s, nil)
	if err := s.UpsertCategories(ctx, []Category{{Name: "coffee", RepeatableAfter: 30 * 24 * time.Hour}, {Name: "tv"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpsertCategories(ctx, []Category{{Name: "coffee", RepeatableAfter: 14 * 24 * time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r := c.Rules()
	got := r.SortedCategories()
	want := []Category{{Name: "coffee", RepeatableAfter: 14 * 24 * time.Hour}, {Name: "tv"}}
	if !slices.Equal(got, want) {
		t.Errorf("categories %v, want %v", got, want)
	}
	if r.RepeatableAfter("coffee") != 14*24*time.Hour || r.RepeatableAfter("tv") != 0 || r.RepeatableAfter("unknown") != 0 {
		t.Errorf("RepeatableAfter wrong: %+v", r.Categories)
	}
	for _, bad := range []Category{{Name: ""}, {Name: "x", RepeatableAfter: -time.Second}, {Name: "x", RepeatableAfter: MaxRepeatableAfter + 1}} {
		if err := s.UpsertCategories(ctx, []Category{bad}); err == nil {
			t.Errorf("category %+v accepted", bad)
		}
	}
}

func TestRulesCacheRunPicksUpChanges(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	c := NewRulesCache(s, nil)
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, 20*time.Millisecond) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	if _, err := s.AddToBlocklist(ctx, []string{"gone"}, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !c.Rules().Blocked("gone", "") {
		if time.Now().After(deadline) {
			t.Fatal("Run did not pick up the blocklist change")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}
