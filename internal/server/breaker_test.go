package server_test

import (
	"context"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/recsys-dev/recsys/internal/metrics"
	"github.com/recsys-dev/recsys/internal/recommend"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// TestBreakerAnswersDegradedAtOnce: with Redis paused (connections hang),
// Recommend calls wait for the profile budget and answer degraded; once
// loads have waited 250 ms (on the breaker's clock) with none finished, the
// breaker opens, after which answers are degraded at once (counted as cause
// "breaker", the store not asked) until a probe, 250 ms later, finds Redis
// back and closes it.
func TestBreakerAnswersDegradedAtOnce(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)}
	var breaker *recommend.Breaker
	rig := startOwnRedis(t, "brk", func(p recommend.Profiles) recommend.Profiles {
		// The hanging loads fail at the rig's 300 ms read timeout; on a slow
		// machine three such failures could open the breaker by the failure
		// rule (tested in package recommend) before this test looks: here
		// only the hang rule may.
		breaker = recommend.WithBreaker(p, recommend.BreakerConfig{Now: clk.Now, Failures: 1000})
		return breaker
	})
	rs, pop, m, conn := rig.rs, rig.pop, rig.m, rig.conn
	rec := recsysv1.NewRecommendationServiceClient(conn)
	events := recsysv1.NewEventServiceClient(conn)
	ctx := context.Background()
	if _, err := events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{
		ev("u", "a1", view, time.Now()), ev("v", "c3", purchase, time.Now()),
	}}); err != nil {
		t.Fatal(err)
	}
	if err := pop.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	recommendU := func() *recsysv1.RecommendResponse {
		t.Helper()
		res, err := rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u", Count: 4})
		if err != nil {
			t.Fatalf("Recommend: %v", err)
		}
		return res
	}
	degraded := func(cause string) float64 {
		var d dto.Metric
		if err := m.DegradedAnswers.WithLabelValues("Recommend", cause).Write(&d); err != nil {
			t.Fatal(err)
		}
		return d.GetCounter().GetValue()
	}
	if res := recommendU(); res.GetDegraded() {
		t.Fatalf("Redis up: %v", res)
	}

	rs.Pause(t)
	for i := range 3 {
		if res := recommendU(); !res.GetDegraded() {
			t.Fatalf("Redis paused, call %d: not degraded", i)
		}
	}
	// Three loads over the budget (the clock has not moved) are the callers'
	// degraded answers, not a reason to open the breaker.
	if breaker.Open() || degraded(metrics.CauseBudget) != 3 {
		t.Fatalf("after 3 loads over the budget: breaker open %v, degraded over budget %g; want closed, 3", breaker.Open(), degraded(metrics.CauseBudget))
	}
	// 250 ms with loads waiting and none finished: a hang; the next call
	// opens the breaker and is answered at once.
	clk.Advance(250 * time.Millisecond)
	for i := range 10 {
		if res := recommendU(); !res.GetDegraded() || res.GetSource() != recsysv1.Source_SOURCE_POPULAR {
			t.Fatalf("breaker open, call %d: %v, want a degraded popular answer", i, res)
		}
	}
	if !breaker.Open() {
		t.Fatal("breaker closed after 250 ms of hanging loads")
	}
	if b, budget := degraded(metrics.CauseBreaker), degraded(metrics.CauseBudget); b != 10 || budget != 3 {
		t.Errorf("breaker open: degraded by breaker %g, over budget %g; want 10 and still 3 (no load waited)", b, budget)
	}

	rs.Resume(t)
	// Redis is back, but until the probe time the breaker keeps answering.
	if res := recommendU(); !res.GetDegraded() || degraded(metrics.CauseBreaker) != 11 {
		t.Errorf("before the probe time: %v", res)
	}
	clk.Advance(250 * time.Millisecond)
	if res := recommendU(); res.GetDegraded() || res.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED {
		t.Errorf("probe with Redis back: %v, want personalized", res)
	}
	if breaker.Open() {
		t.Error("breaker still open after a successful probe")
	}
}
