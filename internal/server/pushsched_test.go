package server_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/pushsched"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/server"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// schedEnv is a test server whose BatchRecommend goes through a
// pushsched.Scheduler over the env's engine (or over engine, when set).
func schedEnv(t *testing.T, cfg pushsched.Config, auth bool, engine pushsched.Pusher, eopt func(*recommend.Config)) (*env, *pushsched.Scheduler) {
	t.Helper()
	var sched *pushsched.Scheduler
	e := newEnvWith(t, envOptions{model: true, engine: eopt, server: func(c *server.Config, d *server.Deps) {
		if auth {
			c.Auth = access.NewAuthenticator(testTokens(t), false)
		}
		c.RateLimits = server.RateLimits{}
		p := engine
		if p == nil {
			p = d.Recommender.(*recommend.Engine)
		}
		var err error
		if sched, err = pushsched.New(cfg, p, nil); err != nil {
			t.Fatal(err)
		}
		d.Pusher = sched
	}})
	return e, sched
}

// heldPusher answers one user, then holds the stream open until the call
// ends: admitted streams stay admitted as long as the test wants.
type heldPusher struct{}

func (heldPusher) Push(ctx context.Context, req recommend.PushRequest, emit func(recommend.PushResult) error) error {
	if err := emit(recommend.PushResult{UserID: req.UserIDs[0], Empty: recommend.EmptyUnknownUser}); err != nil {
		return err
	}
	<-ctx.Done()
	return ctx.Err()
}

// openStream starts a BatchRecommend as token and reads its first message
// (so the server has admitted it); cancel ends it.
func openStream(t *testing.T, e *env, token string, users ...string) (grpc.ServerStreamingClient[recsysv1.BatchRecommendResponse], context.CancelFunc, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var opts []grpc.CallOption
	if token != "" {
		opts = append(opts, as(token))
	}
	st, err := e.rec.BatchRecommend(ctx, &recsysv1.BatchRecommendRequest{UserIds: users, Count: 3}, opts...)
	if err == nil {
		_, err = st.Recv()
	}
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return st, cancel, nil
}

func TestBatchRecommendStreamsPerCaller(t *testing.T) {
	const retry = 7 * time.Second
	e, sched := schedEnv(t, pushsched.Config{StreamsPerCaller: 2, RetryAfter: retry}, true, heldPusher{}, nil)
	ctx := context.Background()
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for range 2 {
		_, cancel, err := openStream(t, e, "tok-push", "u1")
		if err != nil {
			t.Fatalf("stream within the limit: %v", err)
		}
		cancels = append(cancels, cancel)
	}
	// The third stream of the same caller is refused, with RetryInfo.
	_, _, err := openStream(t, e, "tok-push", "u1")
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("third stream: got %v, want ResourceExhausted", err)
	}
	var got *errdetails.RetryInfo
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			got = ri
		}
	}
	if got == nil || got.GetRetryDelay().AsDuration() != retry {
		t.Fatalf("third stream: details %v, want a RetryInfo of %v", st.Details(), retry)
	}
	// Another caller has its own limit.
	_, cancel, err := openStream(t, e, "tok-operator", "u1")
	if err != nil {
		t.Fatalf("another caller's stream: %v", err)
	}
	cancels = append(cancels, cancel)
	if n := sched.OpenStreams(); n != 3 {
		t.Fatalf("open streams: got %d, want 3", n)
	}
	// A cancelled stream gives its place back.
	cancels[0]()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := sched.WaitOpen(wctx, 2); err != nil {
		t.Fatal(err)
	}
	_, cancel, err = openStream(t, e, "tok-push", "u1")
	if err != nil {
		t.Fatalf("stream after one ended: %v", err)
	}
	cancels = append(cancels, cancel)
}

// TestBatchRecommendMemoryBudget drains many streams slowly (one message
// from each in turn) through a budget far smaller than their rounds
// together: every user is answered, rounds wait for the budget, the
// accounting never exceeds it, and everything is released at the end.
func TestBatchRecommendMemoryBudget(t *testing.T) {
	const (
		budget  = 2 << 20
		streams = 12
		users   = 600
	)
	e, sched := schedEnv(t, pushsched.Config{MemoryBudget: budget, StreamsPerCaller: streams}, false, nil, nil)
	pushUsers(t, e)
	ids := make([]string, users)
	for i := range ids {
		ids[i] = []string{"alice", "bob"}[i%2]
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ss []grpc.ServerStreamingClient[recsysv1.BatchRecommendResponse]
	for range streams {
		st, err := e.rec.BatchRecommend(ctx, &recsysv1.BatchRecommendRequest{UserIds: ids, Count: 3})
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, st)
	}
	got := make([]int, streams)
	for done := 0; done < streams; {
		done = 0
		for i, st := range ss {
			if got[i] == users {
				done++
				continue
			}
			m, err := st.Recv()
			if err != nil {
				t.Fatalf("stream %d after %d messages: %v", i, got[i], err)
			}
			if want := ids[got[i]]; m.GetUserId() != want || len(m.GetItems()) != 3 {
				t.Fatalf("stream %d message %d: user %q with %d items, want %q with 3", i, got[i], m.GetUserId(), len(m.GetItems()), want)
			}
			got[i]++
		}
	}
	for i, st := range ss {
		if _, err := st.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("stream %d: got %v after the last user, want EOF", i, err)
		}
	}
	if err := sched.WaitOpen(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if p := sched.PeakInFlight(); p > budget || p == 0 {
		t.Errorf("peak bytes in flight %d, want within (0, %d]", p, budget)
	}
	// Whether a round had to wait depends on how fast the streams' answers
	// leave (at count 3 they fit HTTP/2's window unread); the waiting
	// itself is tested in package pushsched (TestReserveWaitsInOrderAndReleases). Here:
	// the budget held, everything was answered in order and released.
	t.Logf("peak %d of %d bytes, %d rounds waited", sched.PeakInFlight(), budget, sched.Waits())
	if n := sched.InFlight(); n != 0 {
		t.Errorf("%d bytes still reserved after every stream ended", n)
	}
}

func TestBatchRecommendReleasesOnCancel(t *testing.T) {
	e, sched := schedEnv(t, pushsched.Config{MemoryBudget: 4 << 20, StreamsPerCaller: 8}, false, nil, nil)
	pushUsers(t, e)
	ids := make([]string, 5000)
	for i := range ids {
		ids[i] = "alice"
	}
	var cancels []context.CancelFunc
	for range 4 {
		_, cancel, err := openStream(t, e, "", ids...)
		if err != nil {
			t.Fatal(err)
		}
		cancels = append(cancels, cancel)
	}
	if sched.InFlight() == 0 {
		t.Fatal("open streams hold nothing of the budget")
	}
	for _, c := range cancels {
		c()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sched.WaitOpen(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if n := sched.InFlight(); n != 0 {
		t.Errorf("%d bytes still reserved after every stream was cancelled", n)
	}
}

// TestBatchRecommendWorkers: however many streams drain at once, and
// however many goroutines one call would use, at most --push-workers
// scorings run at a time.
func TestBatchRecommendWorkers(t *testing.T) {
	for _, workers := range []int{1, 2} {
		e, sched := schedEnv(t, pushsched.Config{Workers: workers, StreamsPerCaller: 8}, false, nil,
			func(c *recommend.Config) { c.PushWorkers = 4 })
		pushUsers(t, e)
		ids := make([]string, 1000)
		for i := range ids {
			ids[i] = []string{"alice", "bob"}[i%2]
		}
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				out, err := e.batch(t, &recsysv1.BatchRecommendRequest{UserIds: ids, Count: 3})
				if err != nil || len(out) != len(ids) {
					t.Errorf("workers %d: %d messages, %v", workers, len(out), err)
				}
			})
		}
		wg.Wait()
		if p := sched.PeakWorkers(); p < 1 || p > int64(workers) {
			t.Errorf("workers %d: peak of %d scorings at once", workers, p)
		}
	}
}

// TestBatchRecommendChaosSlowStreams is the short chaos run of issue 13:
// 100 streams read slowly (one message from each in turn), a third of them
// are cancelled midway, and the budget's own accounting never exceeds it;
// the others get every answer, and everything is released at the end.
func TestBatchRecommendChaosSlowStreams(t *testing.T) {
	const (
		budget   = 16 << 20
		streams  = 100
		users    = 150
		cancelAt = 40
	)
	e, sched := schedEnv(t, pushsched.Config{MemoryBudget: budget, StreamsPerCaller: streams, Workers: 2}, false, nil, nil)
	pushUsers(t, e)
	ids := make([]string, users)
	for i := range ids {
		ids[i] = []string{"alice", "bob", "ghost"}[i%3]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type stream struct {
		st     grpc.ServerStreamingClient[recsysv1.BatchRecommendResponse]
		cancel context.CancelFunc
		got    int
		done   bool
	}
	ss := make([]*stream, streams)
	for i := range ss {
		sctx, scancel := context.WithCancel(ctx)
		st, err := e.rec.BatchRecommend(sctx, &recsysv1.BatchRecommendRequest{UserIds: ids, Count: 3})
		if err != nil {
			t.Fatal(err)
		}
		ss[i] = &stream{st: st, cancel: scancel}
	}
	var peakSeen int64
	for open := streams; open > 0; {
		open = 0
		for i, s := range ss {
			if s.done {
				continue
			}
			if i%3 == 0 && s.got == cancelAt {
				s.cancel()
				s.done = true
				continue
			}
			m, err := s.st.Recv()
			if errors.Is(err, io.EOF) && s.got == users {
				s.done = true
				continue
			}
			if err != nil {
				t.Fatalf("stream %d after %d messages: %v", i, s.got, err)
			}
			if m.GetUserId() != ids[s.got] {
				t.Fatalf("stream %d message %d: user %q, want %q", i, s.got, m.GetUserId(), ids[s.got])
			}
			s.got++
			open++
			if n := sched.InFlight(); n > budget {
				t.Fatalf("%d bytes in flight, budget %d", n, budget)
			} else {
				peakSeen = max(peakSeen, n)
			}
		}
	}
	for _, s := range ss {
		s.cancel()
	}
	if err := sched.WaitOpen(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if p := sched.PeakInFlight(); p > budget || p < peakSeen || peakSeen == 0 {
		t.Errorf("peak in flight %d (seen %d), budget %d", p, peakSeen, budget)
	}
	if n := sched.InFlight(); n != 0 {
		t.Errorf("%d bytes still reserved after the chaos", n)
	}
}
