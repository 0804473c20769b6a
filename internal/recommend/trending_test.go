package recommend

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/profile"
)

// countingTrending counts Trending reads and signals each.
type countingTrending struct {
	reads atomic.Int64
	read  chan struct{}
}

func (c *countingTrending) Trending(context.Context, int) ([]profile.ItemScore, error) {
	c.reads.Add(1)
	select {
	case c.read <- struct{}{}:
	default:
	}
	return []profile.ItemScore{{ItemID: "t1", Score: 2}}, nil
}

// The trending list is read from the store only while answers ask for it:
// never before its first use, at once after it, then every interval, and
// no longer once unused for LazyIdle.
func TestTrendingIsLazy(t *testing.T) {
	p := NewTrending(&countingTrending{}, 10, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	const every = time.Minute
	tests := []struct {
		name      string
		used      time.Time // zero: never asked for
		refreshed time.Time // zero: never read
		now       time.Time
		want      bool
	}{
		{"never asked for", time.Time{}, time.Time{}, t0, false},
		{"asked for, never read", t0, time.Time{}, t0.Add(time.Second), true},
		{"read within the interval", t0, t0.Add(10 * time.Second), t0.Add(30 * time.Second), false},
		{"read an interval ago, asked for since", t0.Add(50 * time.Second), t0, t0.Add(every), true},
		{"unused for longer than LazyIdle", t0, t0, t0.Add(LazyIdle + time.Second), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p.used.Store(0)
			p.refreshed.Store(0)
			if !tc.used.IsZero() {
				p.used.Store(tc.used.UnixNano())
			}
			if !tc.refreshed.IsZero() {
				p.refreshed.Store(tc.refreshed.UnixNano())
			}
			if got := p.due(tc.now, every); got != tc.want {
				t.Errorf("due = %v, want %v", got, tc.want)
			}
		})
	}
}

// Run reads the trending list within a tick of its first use.
func TestTrendingRunReadsOnFirstUse(t *testing.T) {
	src := &countingTrending{read: make(chan struct{}, 1)}
	p := NewTrending(src, 10, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, 20*time.Millisecond) }()
	if n := src.reads.Load(); n != 0 {
		t.Fatalf("read %d times before any use", n)
	}
	if len(p.List()) != 0 {
		t.Fatal("a list before the first read")
	}
	<-src.read // the first use starts the reads
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if l := p.List(); len(l) != 1 || l[0].ItemID != "t1" {
		t.Errorf("after the read: %v", l)
	}
}

// The popular list is not lazy: List does not record uses.
func TestPopularIsNotLazy(t *testing.T) {
	p := NewPopular(nil, 10, slog.New(slog.NewTextHandler(io.Discard, nil)))
	p.List()
	if p.used.Load() != 0 || p.lazy {
		t.Error("the popular list records its uses")
	}
}
