package registry

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/redistest"
)

// testRegistry is what the tests need of both backends.
type testRegistry interface {
	Source
	Publish(context.Context, *mf.Model) (Version, error)
	Stage(context.Context, *mf.Model) (Version, error)
	Activate(context.Context, string) (Version, error)
	List(context.Context) ([]Version, error)
	setHook(func(step string) error)
}

func (r *Redis) setHook(h func(string) error) { r.hook = h }
func (d *Dir) setHook(h func(string) error)   { d.hook = h }

// A backend opens registries on one fresh storage private to the test; every
// call of the returned function is another instance (for Redis, another
// client connection) on that same storage.
type backend struct {
	name    string
	storage func(t *testing.T) func(Options) testRegistry
}

var backends = []backend{
	{"redis", func(t *testing.T) func(Options) testRegistry {
		c := redistest.Client(t)
		prefix := redistest.Prefix(t, c)
		return func(o Options) testRegistry {
			t.Helper()
			o.Prefix = prefix
			r, err := NewRedis(redistest.Client(t), o)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
	}},
	{"dir", func(t *testing.T) func(Options) testRegistry {
		path := t.TempDir()
		return func(o Options) testRegistry {
			t.Helper()
			d, err := NewDir(path, o)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
	}},
}

// clock starts near the real time (so file ages in the directory backend are
// meaningful) and advances one second per call, so every publish gets a
// distinct, increasing time. skew moves it further ahead.
type clock struct {
	mu   sync.Mutex
	t    time.Time
	skew time.Duration
}

func newClock() *clock { return &clock{t: time.Now().UTC().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t.Add(c.skew)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.skew += d
}

// testModel returns a model of n items with f factors whose ids and factors
// depend on seed, so models of different seeds are told apart by content.
func testModel(t testing.TB, n, f int, seed uint64) *mf.Model {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "s" + strconv.FormatUint(seed, 10) + "-item-" + strconv.Itoa(i)
	}
	factors := make([]float32, n*f)
	for i := range factors {
		factors[i] = float32(rng.NormFloat64() * 0.3)
	}
	m, err := mf.New(mf.Info{
		Version:   "trainer-version",
		TrainedAt: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC),
		Users:     int64(10 * n),
		Hyper:     mf.Hyperparameters{Factors: f, Regularization: 0.05, Alpha: 8, Iterations: 10, Seed: int64(seed)},
		Metrics:   map[string]float64{"seed": float64(seed)},
		Data:      "test",
	}, ids, factors)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// sameModel fails the test unless got holds want's items and factors.
func sameModel(t *testing.T, got, want *mf.Model) {
	t.Helper()
	if got.NumItems() != want.NumItems() || got.Factors() != want.Factors() {
		t.Fatalf("got %d items × %d factors, want %d × %d", got.NumItems(), got.Factors(), want.NumItems(), want.Factors())
	}
	for i, id := range want.ItemIDs() {
		if got.ItemID(int32(i)) != id {
			t.Fatalf("item %d: got id %q, want %q", i, got.ItemID(int32(i)), id)
		}
	}
	gm, wm := got.Matrix(), want.Matrix()
	for i := range wm {
		if gm[i] != wm[i] {
			t.Fatalf("factor %d: got %v, want %v", i, gm[i], wm[i])
		}
	}
	gi, wi := got.Info(), want.Info()
	if !gi.TrainedAt.Equal(wi.TrainedAt) || gi.Hyper != wi.Hyper || gi.Metrics["seed"] != wi.Metrics["seed"] {
		t.Fatalf("info: got %+v, want %+v (apart from the version)", gi, wi)
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// fakeServer is a server's model slot: Watch's apply stores into it, and
// "requests" load it once each.
type fakeServer struct {
	model atomic.Pointer[mf.Model]

	mu      sync.Mutex
	applied []string
}

func (s *fakeServer) apply(m *mf.Model) {
	s.mu.Lock()
	s.applied = append(s.applied, m.Version())
	s.mu.Unlock()
	s.model.Store(m)
}

func (s *fakeServer) version() string {
	if m := s.model.Load(); m != nil {
		return m.Version()
	}
	return ""
}

func (s *fakeServer) appliedVersions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.applied...)
}

func (s *fakeServer) waitFor(t *testing.T, version string) {
	t.Helper()
	eventually(t, "server to serve "+version, func() bool { return s.version() == version })
}

// watch runs Watch for the rest of the test; at the end it cancels it and
// checks that Watch returned nil.
func watch(t *testing.T, src Source, opts WatchOptions) *fakeServer {
	t.Helper()
	s := &fakeServer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, src, s.apply, opts) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch returned %v after cancel, want nil", err)
		}
	})
	return s
}

// countingSource counts reads of Current, so a test can wait until the
// watcher has looked at the registry again. Embedding Source (an interface)
// hides Subscribe: the watcher has to poll.
type countingSource struct {
	Source
	currents atomic.Int64
}

func (c *countingSource) Current(ctx context.Context) (string, error) {
	c.currents.Add(1)
	return c.Source.Current(ctx)
}

// waitPolls waits until the watcher has read Current k more times.
func (c *countingSource) waitPolls(t *testing.T, k int64) {
	t.Helper()
	target := c.currents.Load() + k
	eventually(t, "the watcher to poll", func() bool { return c.currents.Load() >= target })
}
