package experiment_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/attribution"
	"github.com/recsys-dev/recsys/internal/experiment"
	"github.com/recsys-dev/recsys/internal/redistest"
)

// TestMeasureTallyBytesPerUser measures what one user costs in an arm's
// totals (docs/storage.md): 10,000 users of 12-byte ids with an answer of
// 8 items each, by MEMORY USAGE of the arm's hash (a hashtable at this
// size), per user. It fails when the cost leaves the documented bound.
func TestMeasureTallyBytesPerUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	tally := experiment.NewTally(rdb, prefix)
	const n = 10000
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var answers []attribution.Answer
	for i := range n {
		answers = append(answers, attribution.Answer{ID: strconv.Itoa(i), UserID: "user-" + strconv.FormatInt(int64(1_000_000+i), 10),
			Experiment: "x1", Arm: "A", Time: at, Items: make([]string, 8)})
	}
	if err := tally.AddAnswers(ctx, answers); err != nil {
		t.Fatal(err)
	}
	keys, err := redistest.Keys(ctx, rdb, prefix)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %v, %v; want the arm's hash", keys, err)
	}
	bytes, err := rdb.MemoryUsage(ctx, keys[0], 0).Result()
	if err != nil {
		t.Fatal(err)
	}
	per := float64(bytes) / n
	t.Logf("%d users: %d bytes, %.1f bytes per user", n, bytes, per)
	if per > 100 {
		t.Errorf("%.1f bytes per user; docs/storage.md says about 85", per)
	}
	totals, err := tally.Arm(ctx, "x1", "A")
	if err != nil || totals.Users != n || totals.Answers != n || totals.Items != 8*n {
		t.Errorf("read back %+v, %v", totals, err)
	}
	var first time.Time
	if err := tally.Users(ctx, "x1", "A", func(_ []string, ts []experiment.UserTotals) error {
		first = ts[0].First
		return nil
	}); err != nil || !first.Equal(at) {
		t.Errorf("first answer read back as %v, %v; want %v", first, err, at)
	}
}
