package loadgen_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/loadgen"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/redistest"
	"github.com/recsys-dev/recsys/internal/registry"
	"github.com/recsys-dev/recsys/internal/synth"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

const (
	testUsers = 200
	testItems = 300
)

// startDaemon runs a complete recsysd (internal/daemon) on the test Redis
// under a fresh prefix, serving a random model over the synthetic shop's
// item ids, and returns a connection to it once it is SERVING with that
// model loaded. The daemon stops when the test ends.
func startDaemon(t *testing.T) (*grpc.ClientConn, string) {
	t.Helper()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	ctx := t.Context()

	const f = 16
	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]string, testItems)
	factors := make([]float32, testItems*f)
	for i := range ids {
		ids[i] = synth.ItemID(i)
	}
	for i := range factors {
		factors[i] = float32(rng.NormFloat64() * 0.3)
	}
	m, err := mf.New(mf.Info{Version: "v-loadgen", Hyper: mf.Hyperparameters{Factors: f, Regularization: 0.1, Alpha: 10}}, ids, factors)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.NewRedis(rdb, registry.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Publish(ctx, m); err != nil {
		t.Fatal(err)
	}

	d, err := daemon.New(daemon.Config{GRPCAddr: "127.0.0.1:0", RedisAddr: redistest.Addr(), Prefix: prefix, InsecureNoAuth: true},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	conn, err := grpc.NewClient(d.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	watch, err := healthpb.NewHealthClient(conn).Watch(wctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		res, err := watch.Recv()
		if err != nil {
			t.Fatalf("waiting for SERVING: %v", err)
		}
		if res.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
	}
	models := recsysv1.NewModelServiceClient(conn)
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for {
		res, err := models.GetModel(wctx, &recsysv1.GetModelRequest{})
		if err != nil {
			t.Fatalf("waiting for the model: %v", err)
		}
		if res.GetModel().GetVersion() != "" {
			break
		}
		select {
		case <-wctx.Done():
			t.Fatal("the daemon did not load the published model")
		case <-poll.C:
		}
	}
	return conn, prefix
}

// checkCounts asserts what must hold for any finished run.
func checkCounts(t *testing.T, r loadgen.Report) {
	t.Helper()
	var sum loadgen.KindReport
	for _, k := range append(r.Kinds, r.Total) {
		if k.Degraded < 0 || k.Degraded > k.OK {
			t.Errorf("%s: %d degraded of %d OK answers", k.Kind, k.Degraded, k.OK)
		}
		if k.Issued != k.OK+k.Errors+k.Dropped {
			t.Errorf("%s: issued %d != ok %d + errors %d + dropped %d", k.Kind, k.Issued, k.OK, k.Errors, k.Dropped)
		}
		var byCode int64
		for _, n := range k.ErrorCodes {
			byCode += n
		}
		if byCode != k.Errors {
			t.Errorf("%s: errors %d, by code %v", k.Kind, k.Errors, k.ErrorCodes)
		}
		l := k.Latency
		if l.Count != uint64(k.OK) {
			t.Errorf("%s: %d latencies for %d successful calls", k.Kind, l.Count, k.OK)
		}
		if !(l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.Max) || (k.OK > 0 && !(l.P50 > 0)) {
			t.Errorf("%s: latencies out of order: %+v", k.Kind, l)
		}
		if k.Kind != "total" {
			sum.Issued += k.Issued
			sum.OK += k.OK
			sum.Errors += k.Errors
			sum.Dropped += k.Dropped
		}
	}
	if tot := r.Total; sum.Issued != tot.Issued || sum.OK != tot.OK || sum.Errors != tot.Errors || sum.Dropped != tot.Dropped {
		t.Errorf("total %+v is not the sum of the kinds %+v", tot, sum)
	}
}

func TestRunAgainstDaemon(t *testing.T) {
	conn, prefix := startDaemon(t)
	cfg := loadgen.Config{
		Rate: 150, Duration: 2 * time.Second, Warmup: 200 * time.Millisecond, MaxInFlight: 256,
		Mix: loadgen.DefaultMix(), Users: testUsers, Items: testItems, UserSkew: 1, ItemSkew: 0.8,
		EventsPerBatch: 5, Count: 10, Seed: 1, Timeout: 10 * time.Second, ReportEvery: 500 * time.Millisecond,
	}
	var intervals []loadgen.Report
	final, err := loadgen.Run(t.Context(), []grpc.ClientConnInterface{conn}, cfg, func(r loadgen.Report) {
		intervals = append(intervals, r)
	})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, final)
	if !final.Final || final.Interval != cfg.Duration.Seconds() {
		t.Errorf("final report: final %v over %vs, want true over %vs", final.Final, final.Interval, cfg.Duration.Seconds())
	}
	// The schedule is fixed by the rate: 300 calls fall in the measured 2s
	// (±1 for the float arithmetic at the two boundaries).
	if want := int64(cfg.Rate * cfg.Duration.Seconds()); final.Total.Issued < want-1 || final.Total.Issued > want+1 {
		t.Errorf("issued %d calls in the measured part, want %d", final.Total.Issued, want)
	}
	for _, k := range append(final.Kinds, final.Total) {
		if k.Errors != 0 || k.Dropped != 0 {
			t.Errorf("%s: %d errors %v, %d dropped; want none against a healthy local server", k.Kind, k.Errors, k.ErrorCodes, k.Dropped)
		}
		if k.OK == 0 {
			t.Errorf("%s: no successful call", k.Kind)
		}
	}
	if len(intervals) == 0 {
		t.Errorf("no interval report in a 2s run reporting every 500ms")
	}
	var inIntervals int64
	for _, r := range intervals {
		if r.Final {
			t.Errorf("an interval report is marked final")
		}
		inIntervals += r.Total.Issued
	}
	if inIntervals > final.Total.Issued {
		t.Errorf("intervals issued %d calls, more than the run's %d", inIntervals, final.Total.Issued)
	}

	// The events really reached the store: the global stream holds one
	// entry per event of every batch, warmup included (ids are unique).
	var events int64
	for _, k := range final.Kinds {
		if k.Kind == loadgen.Events.String() {
			events = k.OK
		}
	}
	rdb := redistest.Client(t)
	n, err := rdb.XLen(t.Context(), prefix+":{g}:events").Result()
	if err != nil {
		t.Fatal(err)
	}
	if min := events * int64(cfg.EventsPerBatch); n < min {
		t.Errorf("event stream has %d entries, want at least %d (%d batches of %d)", n, min, events, cfg.EventsPerBatch)
	}
}

// TestRunStops: cancelling the context stops issuing at once; the calls in
// flight are finished and counted, and the report covers the time measured.
func TestRunStops(t *testing.T) {
	conn, _ := startDaemon(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cfg := loadgen.Config{
		Rate: 100, Duration: time.Hour, MaxInFlight: 64, Users: testUsers, Items: testItems,
		EventsPerBatch: 2, Count: 5, Seed: 2, ReportEvery: 100 * time.Millisecond,
	}
	reports := 0
	final, err := loadgen.Run(ctx, []grpc.ClientConnInterface{conn}, cfg, func(loadgen.Report) {
		if reports++; reports == 3 {
			cancel() // as SIGTERM would
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, final)
	if !final.Final || final.Interval <= 0 || final.Interval >= time.Hour.Seconds() {
		t.Errorf("final report over %vs, want the time until the stop", final.Interval)
	}
	if final.Total.Issued == 0 || final.Total.Errors != 0 {
		t.Errorf("issued %d, errors %d %v; want calls and no errors (in-flight calls finish)", final.Total.Issued, final.Total.Errors, final.Total.ErrorCodes)
	}
}

// TestRunDropsAtTheBound: with one call allowed in flight and a rate far
// above what one call at a time can serve, calls are dropped, counted, and
// still add up.
func TestRunDropsAtTheBound(t *testing.T) {
	conn, _ := startDaemon(t)
	cfg := loadgen.Config{
		Rate: 20000, Duration: 300 * time.Millisecond, MaxInFlight: 1, Users: testUsers, Items: testItems,
		Mix: loadgen.Mix{loadgen.Events: 1}, EventsPerBatch: 50, Count: 5, Seed: 3,
	}
	final, err := loadgen.Run(t.Context(), []grpc.ClientConnInterface{conn}, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, final)
	if final.Total.Dropped == 0 || final.Total.OK == 0 {
		t.Errorf("ok %d, dropped %d; want both > 0 at 20000/s with one call in flight", final.Total.OK, final.Total.Dropped)
	}
}

func TestRunConfigErrors(t *testing.T) {
	good := loadgen.Config{Rate: 1, Duration: time.Second, MaxInFlight: 1, Users: 1, Items: 1, EventsPerBatch: 1, Count: 1}
	tests := []struct {
		name    string
		change  func(*loadgen.Config)
		wantErr string
	}{
		{"rate", func(c *loadgen.Config) { c.Rate = 0 }, "rate"},
		{"duration", func(c *loadgen.Config) { c.Duration = 0 }, "duration"},
		{"warmup", func(c *loadgen.Config) { c.Warmup = -1 }, "warmup"},
		{"in flight", func(c *loadgen.Config) { c.MaxInFlight = 0 }, "in-flight"},
		{"users", func(c *loadgen.Config) { c.Users = 0 }, "users"},
		{"batch", func(c *loadgen.Config) { c.EventsPerBatch = 0 }, "events per batch"},
		{"count", func(c *loadgen.Config) { c.Count = 0 }, "count"},
		{"skew", func(c *loadgen.Config) { c.UserSkew = -1 }, "skew"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.change(&cfg)
			_, err := loadgen.Run(t.Context(), []grpc.ClientConnInterface{nil}, cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("got %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
	if _, err := loadgen.Run(t.Context(), nil, good, nil); err == nil || !strings.Contains(err.Error(), "no connection") {
		t.Errorf("no connections: got %v", err)
	}
}

// degradingConn answers every call itself: Recommend and SimilarItems
// answers alternate between normal and degraded.
type degradingConn struct {
	mu sync.Mutex
	n  int
}

func (c *degradingConn) Invoke(_ context.Context, _ string, _, reply any, _ ...grpc.CallOption) error {
	c.mu.Lock()
	c.n++
	degraded := c.n%2 == 0
	c.mu.Unlock()
	switch r := reply.(type) {
	case *recsysv1.RecommendResponse:
		r.Degraded = degraded
	case *recsysv1.SimilarItemsResponse:
		r.Degraded = degraded
	}
	return nil
}

func (c *degradingConn) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, errors.New("no streams")
}

// TestRunCountsDegraded: OK answers marked degraded are counted per kind
// (and in the total), never for events, and are still OK answers.
func TestRunCountsDegraded(t *testing.T) {
	conn := &degradingConn{}
	cfg := loadgen.Config{
		Rate: 2000, Duration: 200 * time.Millisecond, MaxInFlight: 1000, Users: testUsers, Items: testItems,
		Mix: loadgen.Mix{loadgen.Recommend: 1, loadgen.Similar: 1}, EventsPerBatch: 1, Count: 5, Seed: 4,
	}
	final, err := loadgen.Run(t.Context(), []grpc.ClientConnInterface{conn}, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, final)
	var sum int64
	for _, k := range final.Kinds {
		sum += k.Degraded
		switch k.Kind {
		case loadgen.Events.String():
			if k.Degraded != 0 {
				t.Errorf("events: %d degraded", k.Degraded)
			}
		default:
			if k.OK == 0 || k.Degraded == 0 || k.Degraded == k.OK {
				t.Errorf("%s: %d degraded of %d OK, want some but not all", k.Kind, k.Degraded, k.OK)
			}
		}
	}
	// Every other answer of the conn is degraded; the measured part is
	// a window of them, so the share is a half give or take one per kind.
	if tot := final.Total; tot.Degraded != sum || tot.Degraded < tot.OK/2-2 || tot.Degraded > tot.OK/2+2 {
		t.Errorf("total: %d degraded of %d OK (kinds sum to %d), want about half", tot.Degraded, tot.OK, sum)
	}
	var b strings.Builder
	if err := loadgen.WriteText(&b, final); err != nil || !strings.Contains(b.String(), "degraded") {
		t.Errorf("WriteText: %v, no degraded column:\n%s", err, b.String())
	}
}
