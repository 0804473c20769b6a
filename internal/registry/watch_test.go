package registry

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/redistest"
)

func TestWatchRejectsNilArguments(t *testing.T) {
	d, err := NewDir(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Watch(context.Background(), nil, func(*mf.Model) {}, WatchOptions{}); err == nil {
		t.Error("Watch with a nil source returned nil")
	}
	if err := Watch(context.Background(), d, nil, WatchOptions{}); err == nil {
		t.Error("Watch with a nil apply returned nil")
	}
}

// A version activated through another client reaches the watcher by pub/sub
// alone: polling is an hour apart. A rollback is applied too, and no version
// is applied twice in a row.
func TestWatchFollowsAnnouncements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	open := backends[0].storage(t) // redis
	opts := Options{Now: newClock().Now}
	publisher := open(opts)
	v1, err := publisher.Publish(ctx, testModel(t, 30, 4, 1))
	if err != nil {
		t.Fatal(err)
	}
	srv := watch(t, open(opts), WatchOptions{PollInterval: time.Hour})
	// The first model is applied after the subscription is confirmed.
	srv.waitFor(t, v1.Name())

	v2, err := publisher.Publish(ctx, testModel(t, 40, 4, 2))
	if err != nil {
		t.Fatal(err)
	}
	srv.waitFor(t, v2.Name())
	if _, err := publisher.Activate(ctx, v1.Name()); err != nil {
		t.Fatal(err)
	}
	srv.waitFor(t, v1.Name())
	// Re-activating the current version announces it again; it is not
	// applied again. Then a new version is.
	if _, err := publisher.Activate(ctx, v1.Name()); err != nil {
		t.Fatal(err)
	}
	v3, err := publisher.Publish(ctx, testModel(t, 50, 4, 3))
	if err != nil {
		t.Fatal(err)
	}
	srv.waitFor(t, v3.Name())
	want := []string{v1.Name(), v2.Name(), v1.Name(), v3.Name()}
	if got := srv.appliedVersions(); !slices.Equal(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
}

// Without announcements (a source that cannot push, or messages lost while
// unsubscribed) the watcher finds new versions by polling.
func TestWatchPollsWithoutAnnouncements(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			open := be.storage(t)
			opts := Options{Now: newClock().Now}
			publisher := open(opts)
			src := &countingSource{Source: open(opts)} // hides Subscribe
			srv := watch(t, src, WatchOptions{PollInterval: 5 * time.Millisecond})
			// Nothing published yet: the watcher polls and applies nothing.
			src.waitPolls(t, 3)
			if got := srv.appliedVersions(); len(got) != 0 {
				t.Fatalf("applied %v from an empty registry", got)
			}
			var want []string
			for seed := range uint64(3) {
				v, err := publisher.Publish(ctx, testModel(t, 30+int(seed), 4, seed))
				if err != nil {
					t.Fatal(err)
				}
				srv.waitFor(t, v.Name())
				want = append(want, v.Name())
			}
			src.waitPolls(t, 3)
			if got := srv.appliedVersions(); !slices.Equal(got, want) {
				t.Errorf("applied %v, want %v", got, want)
			}
		})
	}
}

// memSource is an in-memory Source whose loads can be made to fail.
type memSource struct {
	mu      sync.Mutex
	current string
	models  map[string]*mf.Model
	fail    int // loads still to fail
	loads   int
}

func (s *memSource) Current(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.current, nil
}

func (s *memSource) Load(_ context.Context, v string) (*mf.Model, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads++
	if s.fail > 0 {
		s.fail--
		return nil, errors.New("injected load failure")
	}
	m, ok := s.models[v]
	if !ok {
		return nil, ErrUnknownVersion
	}
	return m, nil
}

// A failed load is retried later, the old model serving meanwhile, and a
// model whose version differs from the one asked for is refused.
func TestWatchRetriesFailedLoads(t *testing.T) {
	t.Parallel()
	m1 := testModel(t, 30, 4, 1).WithVersion("v1")
	m2 := testModel(t, 40, 4, 2).WithVersion("v2")
	src := &memSource{current: "v1", models: map[string]*mf.Model{"v1": m1, "v2": m2, "v3": m2}}
	var failures atomic.Int64
	counted := &countingSource{Source: src}
	srv := watch(t, counted, WatchOptions{
		PollInterval:     time.Millisecond,
		MaxRetryInterval: 4 * time.Millisecond,
		OnError:          func(string, error) { failures.Add(1) },
	})
	srv.waitFor(t, "v1")

	src.mu.Lock()
	src.current, src.fail = "v2", 3
	src.mu.Unlock()
	srv.waitFor(t, "v2")
	if got := failures.Load(); got != 3 {
		t.Errorf("%d failures reported, want 3", got)
	}
	src.mu.Lock()
	loads := src.loads
	src.mu.Unlock()
	if loads != 1+4 {
		t.Errorf("%d loads, want 5 (v1, then v2 three times failing and once succeeding)", loads)
	}

	// "v3" loads a model of version v2: refused as corrupt, v2 stays.
	src.mu.Lock()
	src.current = "v3"
	src.mu.Unlock()
	eventually(t, "the mislabelled version to be refused", func() bool { return failures.Load() > 3 })
	counted.waitPolls(t, 5)
	if got, want := srv.appliedVersions(), []string{"v1", "v2"}; !slices.Equal(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
}

// A fake server answers requests from N goroutines, each loading the model
// pointer once per request, while three new versions are published and
// swapped in. No request fails, every request sees one complete model, no
// goroutine ever sees an older model after a newer one, and the server ends
// on the last version.
func TestHotSwapUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const (
		workers = 8
		f       = 16
	)
	// Model k has 200+50k items, so a snapshot's generation is known from
	// its size; its content is then checked against the source model.
	models := make([]*mf.Model, 4)
	byItems := map[int]int{}
	for k := range models {
		models[k] = testModel(t, 200+50*k, f, uint64(100+k))
		byItems[models[k].NumItems()] = k
	}
	open := backends[0].storage(t) // redis
	reg := open(Options{Now: newClock().Now, ChunkSize: 4096})
	v0, err := reg.Publish(ctx, models[0])
	if err != nil {
		t.Fatal(err)
	}
	srv := watch(t, open(Options{}), WatchOptions{PollInterval: 20 * time.Millisecond})
	srv.waitFor(t, v0.Name())

	var (
		stop     atomic.Bool
		requests [workers]atomic.Int64
		lastGens [workers]atomic.Int64
		failures atomic.Int64
		wg       sync.WaitGroup
	)
	fail := func(format string, args ...any) {
		failures.Add(1)
		t.Errorf(format, args...)
	}
	for w := range workers {
		wg.Go(func() {
			ws := &mf.Workspace{}
			out := make([]float32, models[len(models)-1].NumItems())
			rows := make([]int32, 5)
			weights := []float64{1, 2, 0.5, 3, 1}
			lastGen := -1
			for i := 0; !stop.Load(); i++ {
				m := srv.model.Load() // one snapshot per request
				gen, ok := byItems[m.NumItems()]
				if !ok {
					fail("worker %d: model with %d items", w, m.NumItems())
					return
				}
				if gen < lastGen {
					fail("worker %d: saw generation %d after %d", w, gen, lastGen)
					return
				}
				lastGen = gen
				lastGens[w].Store(int64(gen))
				src := models[gen]
				n := int32(m.NumItems())
				for j := range rows {
					rows[j] = (int32(i*7+w*13) + int32(j)*int32(n/5)) % n
				}
				probe := rows[0]
				if m.ItemID(n-1) != src.ItemID(n-1) || !slices.Equal(m.Vector(probe), src.Vector(probe)) {
					fail("worker %d: generation %d snapshot differs from its source model", w, gen)
					return
				}
				x, err := m.FoldIn(ws, rows, weights)
				if err != nil {
					fail("worker %d: fold-in: %v", w, err)
					return
				}
				m.Scores(x, out)
				for _, r := range rows[:2] {
					var dot float64
					for j, v := range m.Vector(r) {
						dot += float64(v) * float64(x[j])
					}
					if got := float64(out[r]); math.IsNaN(got) || math.Abs(got-dot) > 1e-4*(1+math.Abs(dot)) {
						fail("worker %d: score of row %d = %v, want %v", w, r, got, dot)
						return
					}
				}
				requests[w].Add(1)
			}
		})
	}

	want := []string{v0.Name()}
	for k := 1; k < len(models); k++ {
		v, err := reg.Publish(ctx, models[k])
		if err != nil {
			t.Fatal(err)
		}
		srv.waitFor(t, v.Name())
		want = append(want, v.Name())
	}
	// Every worker serves requests on the last model before stopping.
	last := int64(len(models) - 1)
	eventually(t, "every worker to serve on the last model", func() bool {
		for w := range lastGens {
			if lastGens[w].Load() != last && failures.Load() == 0 {
				return false
			}
		}
		return true
	})
	stop.Store(true)
	wg.Wait()

	if failures.Load() != 0 {
		t.Fatalf("%d failed requests", failures.Load())
	}
	if got := srv.appliedVersions(); !slices.Equal(got, want) {
		t.Errorf("applied %v, want each version once: %v", got, want)
	}
	var total int64
	for w := range requests {
		total += requests[w].Load()
	}
	t.Logf("%d requests across %d workers, %d swaps", total, workers, len(models)-1)
}

// Watch returns nil promptly when its context ends, even in the middle of
// waiting for announcements.
func TestWatchStopsOnCancel(t *testing.T) {
	t.Parallel()
	c := redistest.Client(t)
	reg, err := NewRedis(c, Options{Prefix: redistest.Prefix(t, c)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	src := &countingSource{Source: reg}
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, struct {
			Source
			Notifier
		}{src, reg}, func(*mf.Model) {}, WatchOptions{PollInterval: time.Hour})
	}()
	src.waitPolls(t, 1) // subscribed and past the first check
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch = %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
}
