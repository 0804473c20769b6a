package registry

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The last run's record round-trips on both backends, the latest record
// wins, none reads as not ok, and a record without outcome or time is
// refused.
func TestLastRun(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			open := b.storage(t)
			rec := open(Options{}).(RunRecorder)
			if _, ok, err := rec.LastRun(ctx); ok || err != nil {
				t.Fatalf("LastRun before any run = ok %v, err %v; want none", ok, err)
			}
			at := time.Date(2026, 3, 1, 4, 0, 0, 0, time.UTC)
			runs := []Run{
				{Finished: at, Outcome: OutcomeRefused, Duration: 90 * time.Second, GateMetric: "ndcg@10", GateValue: 0.12, Reason: "worse"},
				{Finished: at.Add(time.Hour), Outcome: OutcomePublished, Duration: 2 * time.Minute, GateMetric: "ndcg@10", GateValue: 0.31, Version: "v1"},
			}
			for _, want := range runs {
				if err := rec.RecordRun(ctx, want); err != nil {
					t.Fatal(err)
				}
				// Another instance on the same storage reads it.
				got, ok, err := open(Options{}).(RunRecorder).LastRun(ctx)
				if err != nil || !ok {
					t.Fatalf("LastRun = ok %v, err %v", ok, err)
				}
				if !got.Finished.Equal(want.Finished) {
					t.Errorf("Finished = %v, want %v", got.Finished, want.Finished)
				}
				got.Finished = want.Finished
				if got != want {
					t.Errorf("LastRun = %+v, want %+v", got, want)
				}
			}
			for _, bad := range []Run{
				{Finished: at, Outcome: "great"},
				{Outcome: OutcomeFailed},
			} {
				if err := rec.RecordRun(ctx, bad); err == nil || !strings.Contains(err.Error(), "retraining run") {
					t.Errorf("RecordRun(%+v) = %v, want an error about the run", bad, err)
				}
			}
		})
	}
}
