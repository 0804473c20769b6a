package recommend_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/recommend"
)

// switchable is a profile store that fails while down, counting loads.
type switchable struct {
	down  bool
	loads int
}

var errDown = errors.New("connection refused")

func (s *switchable) Load(context.Context, string) (profile.Profile, error) {
	s.loads++
	if s.down {
		return profile.Profile{}, errDown
	}
	return profile.Profile{UserID: "u"}, nil
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
func (c *fakeClock) load(b *recommend.Breaker) error {
	_, err := b.Load(context.Background(), "u")
	return err
}

func TestBreaker(t *testing.T) {
	store := &switchable{}
	clk := &fakeClock{t: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)}
	b := recommend.WithBreaker(store, recommend.BreakerConfig{Now: clk.Now})

	// Failures spread wider than the window, or broken by a success, do
	// not open it.
	store.down = true
	for range 2 {
		if err := clk.load(b); !errors.Is(err, errDown) {
			t.Fatalf("closed: got %v, want the store's error", err)
		}
	}
	clk.Advance(time.Second)
	if clk.load(b); b.Open() {
		t.Fatal("opened on 3 failures over more than 1 s")
	}
	store.down = false
	clk.load(b)
	store.down = true
	clk.load(b)
	if clk.load(b); b.Open() {
		t.Fatal("opened on failures broken by a success")
	}
	// The third failure within 1 s opens it.
	clk.Advance(100 * time.Millisecond)
	if err := clk.load(b); !errors.Is(err, errDown) || !b.Open() {
		t.Fatalf("3rd failure within 1 s: got %v, open %v; want the store's error and open", err, b.Open())
	}
	// Open: loads fail at once, without reaching the store, until 250 ms.
	before := store.loads
	for range 5 {
		if err := clk.load(b); !errors.Is(err, recommend.ErrBreakerOpen) {
			t.Fatalf("open: got %v, want ErrBreakerOpen", err)
		}
		clk.Advance(49 * time.Millisecond)
	}
	if store.loads != before {
		t.Errorf("open breaker let %d loads through before the probe time", store.loads-before)
	}
	// At 250 ms one probe goes through; it fails: open for another 250 ms.
	clk.Advance(5 * time.Millisecond)
	if err := clk.load(b); !errors.Is(err, errDown) || store.loads != before+1 || !b.Open() {
		t.Fatalf("probe: got %v after %d loads, open %v; want one load failing, still open", err, store.loads-before, b.Open())
	}
	if err := clk.load(b); !errors.Is(err, recommend.ErrBreakerOpen) {
		t.Fatalf("after a failed probe: got %v, want ErrBreakerOpen", err)
	}
	// The store is back: the next probe succeeds and closes it.
	store.down = false
	clk.Advance(250 * time.Millisecond)
	if err := clk.load(b); err != nil || b.Open() {
		t.Fatalf("successful probe: got %v, open %v; want closed", err, b.Open())
	}
	if err := clk.load(b); err != nil {
		t.Fatalf("closed again: %v", err)
	}
	if b.Opened() != 1 {
		t.Errorf("opened %d times, want 1", b.Opened())
	}
}

// A load its caller cancelled says nothing about the store.
func TestBreakerIgnoresCancelledLoads(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)}
	b := recommend.WithBreaker(cancelled{}, recommend.BreakerConfig{Now: clk.Now})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 5 {
		if _, err := b.Load(ctx, "u"); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	}
	if b.Open() {
		t.Error("cancelled loads opened the breaker")
	}
}

type cancelled struct{}

func (cancelled) Load(ctx context.Context, _ string) (profile.Profile, error) {
	return profile.Profile{}, ctx.Err()
}

// gate is a profile store whose loads wait, while hold is set, until
// release is closed; started tells of each waiting load.
type gate struct {
	hold    atomic.Bool
	started chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{started: make(chan struct{}, 100), release: make(chan struct{})} }

func (g *gate) Load(context.Context, string) (profile.Profile, error) {
	if g.hold.Load() {
		g.started <- struct{}{}
		<-g.release
	}
	return profile.Profile{UserID: "u"}, nil
}

// waiting starts n loads that wait at the gate and returns when all wait.
func (g *gate) waiting(t *testing.T, b *recommend.Breaker, n int) *sync.WaitGroup {
	t.Helper()
	g.hold.Store(true)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := b.Load(context.Background(), "u"); err != nil {
				t.Errorf("waiting load: %v", err)
			}
		})
		<-g.started
	}
	return &wg
}

// A store that stops answering opens the breaker once loads have waited
// Hang (250 ms) with none finished; loads from before the opening that
// then succeed do not close it (a probe does).
func TestBreakerOpensOnHang(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)}
	g := newGate()
	b := recommend.WithBreaker(g, recommend.BreakerConfig{Now: clk.Now})
	wg := g.waiting(t, b, 2)
	clk.Advance(200 * time.Millisecond)
	wg2 := g.waiting(t, b, 1) // 200 ms without progress: still admitted
	if b.Open() {
		t.Fatal("opened after 200 ms")
	}
	clk.Advance(50 * time.Millisecond)
	res := make(chan error, 1)
	go func() { res <- clk.load(b) }()
	select {
	case err := <-res:
		if !errors.Is(err, recommend.ErrBreakerOpen) || !b.Open() {
			t.Fatalf("after 250 ms of waiting loads: got %v, open %v; want ErrBreakerOpen", err, b.Open())
		}
	case <-g.started:
		close(g.release)
		t.Fatal("after 250 ms of waiting loads a new load still went to the store")
	}
	g.hold.Store(false)
	close(g.release)
	wg.Wait()
	wg2.Wait()
	if !b.Open() {
		t.Fatal("loads begun before the opening closed the breaker")
	}
	clk.Advance(250 * time.Millisecond)
	if err := clk.load(b); err != nil || b.Open() {
		t.Fatalf("probe: got %v, open %v; want closed", err, b.Open())
	}
	if b.Opened() != 1 {
		t.Errorf("opened %d times, want 1", b.Opened())
	}
}

// A stall shorter than Hang, or one stuck load while others finish, does
// not open the breaker: only a store that stopped answering does.
func TestBreakerIgnoresStallsAndSlowLoads(t *testing.T) {
	t.Run("short stall", func(t *testing.T) {
		clk := &fakeClock{t: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)}
		g := newGate()
		b := recommend.WithBreaker(g, recommend.BreakerConfig{Now: clk.Now})
		wg := g.waiting(t, b, 5)
		clk.Advance(200 * time.Millisecond)
		g.hold.Store(false)
		close(g.release)
		wg.Wait()
		clk.Advance(100 * time.Millisecond)
		if err := clk.load(b); err != nil || b.Open() {
			t.Fatalf("after a 200 ms stall: got %v, open %v; want a load, closed", err, b.Open())
		}
	})
	t.Run("one stuck load", func(t *testing.T) {
		clk := &fakeClock{t: time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)}
		g := newGate()
		b := recommend.WithBreaker(g, recommend.BreakerConfig{Now: clk.Now})
		wg := g.waiting(t, b, 1)
		g.hold.Store(false)
		for i := range 10 {
			clk.Advance(100 * time.Millisecond)
			if err := clk.load(b); err != nil || b.Open() {
				t.Fatalf("load %d, %d ms after the stuck one: got %v, open %v", i, 100*(i+1), err, b.Open())
			}
		}
		close(g.release)
		wg.Wait()
	})
}
