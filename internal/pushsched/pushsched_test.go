package pushsched

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/recsys-dev/recsys/internal/recommend"
)

func newTestScheduler(t *testing.T, cfg Config) *Scheduler {
	t.Helper()
	s, err := New(cfg, nopPusher{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type nopPusher struct{}

func (nopPusher) Push(context.Context, recommend.PushRequest, func(recommend.PushResult) error) error {
	return nil
}

func TestAdmission(t *testing.T) {
	s := newTestScheduler(t, Config{MemoryBudget: 1 << 20, StreamsPerCaller: 2})
	a1, err := s.Admit("a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Admit("a", 1); err != nil {
		t.Fatal(err)
	}
	var le *LimitError
	if _, err := s.Admit("a", 1); !errors.As(err, &le) || le.Limit != "streams_per_caller" || le.RetryAfter != DefaultRetryAfter {
		t.Fatalf("third stream of a caller: got %v, want a streams_per_caller LimitError", err)
	}
	// Bases fill half the budget: 512 KiB / (64 KiB + 1 KiB) = 7 streams.
	admitted := 2
	for i := range 10 {
		if _, err := s.Admit(string(rune('b'+i)), 1); err != nil {
			if !errors.As(err, &le) || le.Limit != "memory_budget" {
				t.Fatalf("got %v, want a memory_budget LimitError", err)
			}
			break
		}
		admitted++
	}
	if want := int((1 << 20) / 2 / streamBase(1)); admitted != want {
		t.Errorf("admitted %d streams, want %d (half the budget in bases)", admitted, want)
	}
	a1.Close()
	a1.Close() // twice is harmless
	if _, err := s.Admit("a", 1); err != nil {
		t.Errorf("after a close: %v", err)
	}
	if s.InFlight() > s.cfg.MemoryBudget || s.PeakInFlight() > s.cfg.MemoryBudget {
		t.Errorf("in flight %d, peak %d, budget %d", s.InFlight(), s.PeakInFlight(), s.cfg.MemoryBudget)
	}
}

func TestReserveWaitsInOrderAndReleases(t *testing.T) {
	s := newTestScheduler(t, Config{MemoryBudget: 1 << 20})
	st, err := s.Admit("a", 1)
	if err != nil {
		t.Fatal(err)
	}
	half := s.budget.roundSize()
	ctx := context.Background()
	got, err := st.Reserve(ctx, 1000, 10*half) // takes all it may
	if err != nil || got != half {
		t.Fatalf("reserve: got %d, %v; want %d", got, err, half)
	}
	if st.TryReserve(1) {
		t.Fatal("TryReserve succeeded with the rounds' half full")
	}
	if _, err := st.Reserve(ctx, half+1, half+1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a reservation over the half: got %v, want ErrTooLarge", err)
	}
	// A waiter that gives up is removed; a later one is served.
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { _, err := st.Reserve(cctx, 10, 10); errc <- err }()
	waitFor(t, func() bool { s.budget.mu.Lock(); defer s.budget.mu.Unlock(); return len(s.budget.waiters) == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	type res struct {
		n   int64
		err error
	}
	second := make(chan res, 1)
	go func() { n, err := st.Reserve(ctx, 100, 200); second <- res{n, err} }()
	waitFor(t, func() bool { s.budget.mu.Lock(); defer s.budget.mu.Unlock(); return len(s.budget.waiters) == 1 })
	st.Release(150)
	r := <-second
	if r.err != nil || r.n != 150 {
		t.Fatalf("waiter after a release of 150: got %d, %v; want 150", r.n, r.err)
	}
	st.Close()
	if n := s.InFlight(); n != 0 {
		t.Errorf("after close: %d bytes in flight", n)
	}
	if p := s.PeakInFlight(); p > s.cfg.MemoryBudget {
		t.Errorf("peak %d over the budget %d", p, s.cfg.MemoryBudget)
	}
	if s.Waits() != 2 {
		t.Errorf("waits: got %d, want 2", s.Waits())
	}
}

// waitFor polls cond: the waiter's goroutine enqueues itself
// asynchronously, and the queue is the only signal of that.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWorkBoundsConcurrency(t *testing.T) {
	s := newTestScheduler(t, Config{Workers: 2})
	st, err := s.Admit("a", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	release := make(chan struct{})
	started := make(chan struct{}, 8)
	done := make(chan error, 8)
	for range 8 {
		go func() {
			done <- st.Work(ctx, func() error { started <- struct{}{}; <-release; return nil })
		}()
	}
	<-started
	<-started
	// Two run; the others wait for a worker: a third cannot start.
	select {
	case <-started:
		t.Fatal("a third scoring started with 2 workers")
	default:
	}
	close(release)
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if p := s.PeakWorkers(); p != 2 {
		t.Errorf("peak workers: got %d, want 2", p)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{{MemoryBudget: 1000}, {StreamsPerCaller: -1}, {Workers: -2}, {RetryAfter: -time.Second}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: valid", c)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// Every channel × outcome series of the answers counter exists before the
// first answer, at 0.
func TestAnswerSeriesExistFromTheStart(t *testing.T) {
	s := newTestScheduler(t, Config{})
	got := testutil.CollectAndCount(s.m.answers, "recsys_push_answers_total")
	if want := 4 * (len(outcomes) + 1); got != want {
		t.Errorf("%d push answer series at start, want %d (4 channels × %d outcomes and other)", got, want, len(outcomes))
	}
	if v := testutil.ToFloat64(s.m.answers.WithLabelValues("email", "holdout")); v != 0 {
		t.Errorf("email/holdout = %v at start, want 0", v)
	}
}
