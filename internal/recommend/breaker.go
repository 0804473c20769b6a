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
	DefaultBreakerHang     = 250 * time.Millisecond
	DefaultBreakerProbe    = 250 * time.Millisecond
)

// BreakerConfig tunes WithBreaker; zero fields get the defaults.
type BreakerConfig struct {
	// Failures within Window, with no success in between, open the
	// breaker (default 3 within 1 s). A success resets the count.
	Failures int
	Window   time.Duration
	// Hang opens the breaker when loads are waiting and none has finished
	// for that long (default 250 ms): a store that stopped answering
	// (paused, partitioned, blocked) fails no load until the loads' own
	// timeouts, seconds later. A load that is merely slow, or a short
	// stall of the store (a long command blocking Redis for a tenth of a
	// second), does not open it.
	Hang time.Duration
	// Probe is how often an open breaker lets one load through to test
	// the store (default 250 ms).
	Probe time.Duration
	Now   func() time.Time // default time.Now
	Log   *slog.Logger     // logs opening and closing (default: discard)
}

// Breaker is a circuit breaker on profile loads. It opens on failures
// (Failures failed loads within Window, with no successful load in
// between) and on a hang (loads waiting, none finished for Hang); open,
// loads fail at once with ErrBreakerOpen (the answer goes degraded without
// waiting for the profile budget); every Probe one load goes through (half
// open), and its success closes the breaker, its failure keeps it open for
// another Probe.
//
// It sits below the profile budget (WithLoadBudget(WithBreaker(store))),
// so it judges the store by how loads end, not by whether one caller
// stopped waiting: a burst of loads over the 50 ms budget that then
// succeed is the caller's degraded answer, not a reason to degrade every
// answer for the next 250 ms. A load the caller cancelled is not a failure
// of the store, and a load that began before the breaker last opened or
// closed says nothing about the store now.
type Breaker struct {
	p   Profiles
	cfg BreakerConfig

	mu        sync.Mutex
	gen       uint64      // bumped when the breaker opens or closes
	failures  []time.Time // closed: recent failure times, oldest first
	inflight  int         // loads of this generation not finished
	progress  time.Time   // closed: when a load last finished (or the wait began)
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
	if cfg.Hang <= 0 {
		cfg.Hang = DefaultBreakerHang
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
	gen, probe, err := b.admit()
	if err != nil {
		return profile.Profile{}, fmt.Errorf("load profile of %q: %w", userID, err)
	}
	p, err := b.p.Load(ctx, userID)
	b.done(gen, probe, err, errors.Is(ctx.Err(), context.Canceled))
	return p, err
}

// admit decides whether a load may go to the store, and whether it is the
// open breaker's probe; gen is the generation the load belongs to.
func (b *Breaker) admit() (gen uint64, probe bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.cfg.Now()
	if !b.open && b.inflight > 0 && now.Sub(b.progress) >= b.cfg.Hang {
		b.trip(now, "loads waiting, none finished", now.Sub(b.progress))
	}
	if b.open {
		if b.probing || now.Before(b.nextProbe) {
			return 0, false, ErrBreakerOpen
		}
		b.probing = true
		b.inflight++
		return b.gen, true, nil
	}
	if b.inflight == 0 {
		b.progress = now
	}
	b.inflight++
	return b.gen, false, nil
}

// trip opens the breaker; b.mu is held.
func (b *Breaker) trip(now time.Time, why string, detail any) {
	b.gen++
	b.open, b.nextProbe, b.failures, b.inflight = true, now.Add(b.cfg.Probe), b.failures[:0], 0
	b.opened++
	b.cfg.Log.Warn("profile store breaker open: Recommend answers degraded at once, probing the store",
		"why", why, "detail", detail, "probe_every", b.cfg.Probe)
}

// done records a load's outcome; cancelled: the caller gave up (not the
// store's fault).
func (b *Breaker) done(gen uint64, probe bool, err error, cancelled bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if gen != b.gen {
		return // began before the breaker last opened or closed
	}
	now := b.cfg.Now()
	b.inflight--
	b.progress = now
	if probe {
		b.probing = false
	}
	switch {
	case err == nil:
		if b.open && probe {
			b.gen++
			b.open, b.failures, b.inflight, b.progress = false, b.failures[:0], 0, now
			b.cfg.Log.Info("profile store breaker closed: a probe load succeeded")
		} else if !b.open {
			b.failures = b.failures[:0]
		}
	case cancelled: // no verdict
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
			b.trip(now, fmt.Sprintf("%d failed loads within %v", b.cfg.Failures, b.cfg.Window), err)
		}
	}
}
