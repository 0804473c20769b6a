package recommend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/recsys-dev/recsys/internal/profile"
)

// ErrBreakerOpen marks a profile load refused at once because the profile
// store failed repeatedly just before (see WithBreaker).
var ErrBreakerOpen = errors.New("profile store breaker open")

// Defaults of BreakerConfig.
const (
	DefaultBreakerFailures = 3
	DefaultBreakerWindow   = time.Second
	DefaultBreakerProbe    = 250 * time.Millisecond
)

// BreakerConfig tunes WithBreaker; zero fields get the defaults.
type BreakerConfig struct {
	// Failures within Window, with no success in between, open the
	// breaker (default 3 within 1 s). A success resets the count, so the
	// odd slow load of a busy store does not open it.
	Failures int
	Window   time.Duration
	// Probe is how often an open breaker lets one load through to test
	// the store (default 250 ms).
	Probe time.Duration
	Now   func() time.Time // default time.Now
	Log   *slog.Logger     // logs opening and closing (default: discard)
}

// Breaker is a circuit breaker on profile loads: after Failures failed
// loads within Window, with no successful load in between, it opens, and loads fail at once with ErrBreakerOpen
// (the answer goes degraded without waiting for the profile budget);
// every Probe one load goes through (half open), and its success closes
// the breaker, its failure keeps it open for another Probe. A load the
// caller cancelled is not a failure of the store.
type Breaker struct {
	p   Profiles
	cfg BreakerConfig

	mu        sync.Mutex
	failures  []time.Time // closed: recent failure times, oldest first
	open      bool
	nextProbe time.Time // open: when the next load may go through
	probing   bool      // open: a probe is running
	opened    int64     // times the breaker opened
}

var _ Profiles = (*Breaker)(nil)

// WithBreaker returns p behind a circuit breaker.
func WithBreaker(p Profiles, cfg BreakerConfig) *Breaker {
	if cfg.Failures <= 0 {
		cfg.Failures = DefaultBreakerFailures
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultBreakerWindow
	}
	if cfg.Probe <= 0 {
		cfg.Probe = DefaultBreakerProbe
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Breaker{p: p, cfg: cfg}
}

// Open reports whether the breaker is open (loads refused but for probes).
func (b *Breaker) Open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}

// Opened returns how many times the breaker opened.
func (b *Breaker) Opened() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opened
}

// Load loads the profile unless the breaker is open.
func (b *Breaker) Load(ctx context.Context, userID string) (profile.Profile, error) {
	probe, err := b.admit()
	if err != nil {
		return profile.Profile{}, fmt.Errorf("load profile of %q: %w", userID, err)
	}
	p, err := b.p.Load(ctx, userID)
	b.done(probe, err, ctx.Err() != nil)
	return p, err
}

// admit decides whether a load may go to the store, and whether it is the
// open breaker's probe.
func (b *Breaker) admit() (probe bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.open {
		return false, nil
	}
	if b.probing || b.cfg.Now().Before(b.nextProbe) {
		return false, ErrBreakerOpen
	}
	b.probing = true
	return true, nil
}

// done records a load's outcome; cancelled: the caller gave up (not the
// store's fault, unless the store failed first).
func (b *Breaker) done(probe bool, err error, cancelled bool) {
	failed := err != nil && !cancelled
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Now()
	if probe {
		b.probing = false
	}
	switch {
	case !failed && err == nil:
		if b.open && probe {
			b.open, b.failures = false, b.failures[:0]
			b.cfg.Log.Info("profile store breaker closed: a probe load succeeded")
		} else if !b.open {
			b.failures = b.failures[:0]
		}
	case !failed: // cancelled by the caller: no verdict
	case b.open:
		if probe {
			b.nextProbe = now.Add(b.cfg.Probe)
		}
	default:
		b.failures = append(b.failures, now)
		cut := 0
		for cut < len(b.failures) && now.Sub(b.failures[cut]) >= b.cfg.Window {
			cut++
		}
		b.failures = append(b.failures[:0], b.failures[cut:]...)
		if len(b.failures) >= b.cfg.Failures {
			b.open, b.nextProbe, b.failures = true, now.Add(b.cfg.Probe), b.failures[:0]
			b.opened++
			b.cfg.Log.Warn("profile store breaker open: Recommend answers degraded at once, probing the store",
				"failures", b.cfg.Failures, "within", b.cfg.Window, "probe_every", b.cfg.Probe, "err", err)
		}
	}
}
