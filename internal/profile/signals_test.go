package profile

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

// The dismissal and search keys are capped and expire.
func TestDismissalsAndSearchesAreCappedWithTTL(t *testing.T) {
	s, rdb, clk := newStore(t, Config{DismissCap: 3, SearchCap: 2, NotInterestedTTL: time.Hour})
	ctx := context.Background()
	var evs []event.Event
	for i := range 5 {
		evs = append(evs, event.Event{ID: "d" + strconv.Itoa(i), UserID: "u", ItemID: "i" + strconv.Itoa(i),
			Type: event.NotInterested, Time: clk.Now().Add(time.Duration(i) * time.Second)})
	}
	for i, m := range []string{"a", "b", "b", "c", "c", "c"} {
		evs = append(evs, event.Event{ID: "s" + strconv.Itoa(i), UserID: "u", Type: event.Search,
			Matches: event.SearchMatch("category", m)})
	}
	if _, err := s.Record(ctx, evs); err != nil {
		t.Fatal(err)
	}
	p, err := s.Load(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Dismissed) != 3 || p.Dismissed[0].ItemID != "i4" || p.Dismissed[2].ItemID != "i2" {
		t.Errorf("dismissed %+v, want the 3 newest, i4 first", p.Dismissed)
	}
	if len(p.Searches) != 2 || p.Searches[0].Value != "c" || p.Searches[0].Count != 3 || p.Searches[1].Value != "b" {
		t.Errorf("searches %+v, want c 3 and b 2", p.Searches)
	}
	if len(p.History) != 0 {
		t.Errorf("history %+v, want none: dismissals and searches are not history", p.History)
	}
	k := s.keysOf("u")
	for key, max := range map[string]time.Duration{k.dis: time.Hour, k.srch: s.cfg.UserTTL} {
		ttl, err := rdb.PTTL(ctx, key).Result()
		if err != nil || ttl <= 0 || ttl > max {
			t.Errorf("TTL of %s = %v (%v), want in (0, %v]", key, ttl, err, max)
		}
	}
	// Past the TTL the dismissals are not read, before any write trims them.
	clk.Set(clk.Now().Add(time.Hour + 10*time.Second))
	if p, err = s.Load(ctx, "u"); err != nil || len(p.Dismissed) != 0 {
		t.Errorf("after the TTL: %+v %v, want no dismissals", p.Dismissed, err)
	}
}
