package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/recsys-dev/recsys/internal/metrics"
	"github.com/recsys-dev/recsys/internal/recommend"
)

// Fallback answers without the profile store (implemented by
// *recommend.Engine).
type Fallback interface {
	Fallback(req recommend.Request) recommend.Result
}

// degradation decides when Recommend answers degraded and keeps count.
type degradation struct {
	fallback Fallback // nil: never degrade
	log      *slog.Logger
	metrics  *metrics.Set
	now      func() time.Time

	// The log gets at most one line per degradedLogEvery, with the number
	// of degraded answers since the previous line: an outage would
	// otherwise log every request, and a budget at the edge of Redis'
	// latency would log every few requests.
	mu      sync.Mutex
	lastLog time.Time
	unseen  int
}

// degradedLogEvery is the longest gap between two degraded-answer log lines.
const degradedLogEvery = 10 * time.Second

// canDegrade reports whether a failed Recommend may be answered from the
// in-process snapshot: the profile load failed for want of Redis (down,
// unreachable, over its budget, or refused by the open breaker), and the caller is still waiting.
// Anything else (a bug, corrupt data, the caller's own deadline) stays an
// error.
func (d *degradation) canDegrade(ctx context.Context, err error) bool {
	if d.fallback == nil || ctx.Err() != nil {
		return false
	}
	return errors.Is(err, recommend.ErrProfileBudget) || errors.Is(err, recommend.ErrBreakerOpen) || isUnavailable(err)
}

// count counts a degraded answer of method after err.
func (d *degradation) count(method string, err error) {
	cause := metrics.CauseUnavailable
	switch {
	case errors.Is(err, recommend.ErrBreakerOpen):
		cause = metrics.CauseBreaker
	case errors.Is(err, recommend.ErrProfileBudget):
		cause = metrics.CauseBudget
	}
	d.metrics.Degraded(method, cause)
}

// recommend answers req degraded after err.
func (d *degradation) recommend(ctx context.Context, req recommend.Request, err error) recommend.Result {
	d.count("Recommend", err)
	now := d.now()
	d.mu.Lock()
	d.unseen++
	n, logIt := d.unseen, now.Sub(d.lastLog) >= degradedLogEvery
	if logIt {
		d.lastLog, d.unseen = now, 0
	}
	d.mu.Unlock()
	if logIt {
		d.log.WarnContext(ctx, "answering Recommend degraded (not personalized): profile store down or slower than the profile budget",
			"degraded_answers_since_last_line", n, "err", err)
	}
	return d.fallback.Fallback(req)
}
