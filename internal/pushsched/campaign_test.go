package pushsched

import (
	"context"
	"errors"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/redistest"
)

// TestHeldOutShare: over 100,000 ids the holdout share is honoured within
// 5 standard deviations, and two campaigns draw independently.
func TestHeldOutShare(t *testing.T) {
	const n = 100_000
	for _, share := range []float64{0, 0.05, 0.2, 0.5} {
		a, both := 0, 0
		for i := range n {
			id := "user-" + strconv.Itoa(i)
			x := HeldOut("c1", id, share)
			if x {
				a++
			}
			if x && HeldOut("c2", id, share) {
				both++
			}
		}
		sd := math.Sqrt(n * share * (1 - share))
		if d := math.Abs(float64(a) - n*share); d > 5*sd {
			t.Errorf("share %v: %d of %d held out (%.1f sd off)", share, a, n, d/sd)
		}
		// Independent draws: both campaigns hold out share² of the users.
		p := share * share
		if d := math.Abs(float64(both) - n*p); d > 5*math.Sqrt(n*p*(1-p))+1 {
			t.Errorf("share %v: %d users held out by both campaigns, want about %.0f", share, both, n*p)
		}
	}
	if HeldOut("c", "u", 0) || !HeldOut("c", "u", 1) {
		t.Error("share 0 must hold out nobody and 1 everybody")
	}
}

func TestCampaignStoreIsBounded(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	c, err := NewCampaigns(rdb, CampaignConfig{Prefix: prefix, MaxMembers: 3, TTL: 48 * time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Begin(ctx, "spring {sale}", 0.1); err != nil {
		t.Fatal(err)
	}
	if err := c.Begin(ctx, "spring {sale}", 0.2); !errors.Is(err, ErrCampaignMismatch) {
		t.Fatalf("another share: got %v, want ErrCampaignMismatch", err)
	}
	if err := c.Add(ctx, "spring {sale}", []string{"a", "b", "a", "c", "d", "e"}, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "spring {sale}")
	if err != nil {
		t.Fatal(err)
	}
	want := Campaign{ID: "spring {sale}", HoldoutShare: 0.1, First: now, Last: now, TargetedAnswers: 6, HeldOutAnswers: 1,
		Dropped: 2, TargetedUsers: 3, HeldOutUsers: 1}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	keys, err := redistest.Keys(ctx, rdb, prefix+":")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 {
		t.Errorf("keys %v, want meta, two sets and the index", keys)
	}
	for _, k := range keys {
		if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 0 || ttl > 48*time.Hour {
			t.Errorf("%s: TTL %v, want within 48h", k, ttl)
		}
	}
	if _, err := c.Get(ctx, "never"); !errors.Is(err, ErrNoCampaign) {
		t.Errorf("unknown campaign: got %v, want ErrNoCampaign", err)
	}
}
