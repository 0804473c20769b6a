package recommend_test

import (
	"context"
	"errors"
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

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time          { return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.t = c.t.Add(d) }
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
