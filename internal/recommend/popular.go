package recommend

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/recsys-dev/recsys/internal/periodic"
	"github.com/recsys-dev/recsys/internal/profile"
)

// PopularSource reads the decayed popularity counters.
type PopularSource interface {
	Popular(ctx context.Context, n int) ([]profile.ItemScore, error)
}

// Popular keeps the most popular items in process, refreshed in the
// background, so cold users are answered without a Redis round trip and the
// list survives a Redis outage.
type Popular struct {
	src       PopularSource
	size      int
	list      atomic.Pointer[[]profile.ItemScore]
	refreshed atomic.Int64 // unix nanos of the last successful refresh
	log       *slog.Logger
	// lazy lists (trending) are refreshed only while in use: used is the
	// unix nanos of the last List call.
	lazy bool
	used atomic.Int64
}

// LazyIdle is how long a lazy list (trending) keeps being refreshed after
// it was last asked for.
const LazyIdle = 10 * time.Minute

// NewPopular returns a cache of the size most popular items.
func NewPopular(src PopularSource, size int, log *slog.Logger) *Popular {
	if size <= 0 {
		size = 1000
	}
	p := &Popular{src: src, size: size, log: log}
	empty := []profile.ItemScore{}
	p.list.Store(&empty)
	return p
}

// List returns the cached list, best first; callers must not modify it.
func (p *Popular) List() []profile.ItemScore {
	if p.lazy {
		p.used.Store(time.Now().UnixNano())
	}
	return *p.list.Load()
}

// Refreshed returns when the list was last read successfully (zero: never).
func (p *Popular) Refreshed() time.Time {
	n := p.refreshed.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Refresh reads the list from the source now.
func (p *Popular) Refresh(ctx context.Context) error {
	l, err := p.src.Popular(ctx, p.size)
	if err != nil {
		return err
	}
	p.list.Store(&l)
	p.refreshed.Store(time.Now().UnixNano())
	return nil
}

// Run refreshes the list every interval until ctx ends. Errors are logged and
// the last good list is kept. A lazy list is refreshed only while it is in
// use (asked for within LazyIdle): within a second of its first use, then
// every interval; unused, it costs the store nothing.
func (p *Popular) Run(ctx context.Context, every time.Duration) error {
	if !p.lazy {
		return periodic.Run(ctx, "popular items refresh", every, p.log, p.Refresh)
	}
	return periodic.Run(ctx, "trending items refresh", min(every, time.Second), p.log, func(ctx context.Context) error {
		if !p.due(time.Now(), every) {
			return nil
		}
		return p.Refresh(ctx)
	})
}

// due reports whether a lazy list should be refreshed at now: asked for
// within LazyIdle, and not refreshed within every.
func (p *Popular) due(now time.Time, every time.Duration) bool {
	used := p.used.Load()
	if used == 0 || now.Sub(time.Unix(0, used)) > LazyIdle {
		return false
	}
	last := p.refreshed.Load()
	return last == 0 || now.Sub(time.Unix(0, last)) >= every
}
