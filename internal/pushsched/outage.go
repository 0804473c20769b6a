package pushsched

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/redisconn"
)

// Backoff of Profiles' retries: the first wait, doubled up to the last.
const (
	outageFirstWait = 50 * time.Millisecond
	outageMaxWait   = time.Second
)

// Profiles is the profile store of push calls (the engine's PushProfiles)
// riding out Redis outages: a block load that fails because Redis is
// unreachable is retried, with backoff from 50 ms to 1 s, until it
// succeeds, the call ends, or Config.OutageWait has passed since the first
// failure. A push stream is a batch job: waiting a few seconds for Redis
// to come back (or for the client's connection pool to dial again after
// it did) costs less than ending a campaign's stream half sent. Other
// errors are returned at once. A waiting load keeps the budget its round
// reserved (every stream's loads wait during an outage anyway).
//
// Segment selection (EachSeenUser) is passed through: its pages cannot be
// re-read without repeating users.
type Profiles struct {
	p       recommend.PushProfiles
	maxWait time.Duration
	waits   atomic.Int64
}

var _ recommend.PushProfiles = (*Profiles)(nil)

// WaitOutages wraps p; loads wait for an outage to end up to cfg's
// OutageWait (defaults filled in).
func WaitOutages(p recommend.PushProfiles, cfg Config) *Profiles {
	return &Profiles{p: p, maxWait: cfg.WithDefaults().OutageWait}
}

// Waits counts the loads that failed for an outage and were retried.
func (o *Profiles) Waits() int64 { return o.waits.Load() }

// LoadMany loads the profiles of ids, retrying through an outage.
func (o *Profiles) LoadMany(ctx context.Context, ids []string) ([]profile.Profile, error) {
	wait, deadline := outageFirstWait, time.Time{}
	for {
		ps, err := o.p.LoadMany(ctx, ids)
		if err == nil || !redisconn.Unavailable(err) || ctx.Err() != nil {
			return ps, err
		}
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(o.maxWait)
		}
		if !now.Before(deadline) {
			return nil, err
		}
		o.waits.Add(1)
		t := time.NewTimer(min(wait, deadline.Sub(now)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
		wait = min(2*wait, outageMaxWait)
	}
}

// EachSeenUser pages through the users active in [since, until).
func (o *Profiles) EachSeenUser(ctx context.Context, since, until time.Time, page int, fn func(ids []string) error) error {
	return o.p.EachSeenUser(ctx, since, until, page, fn)
}
