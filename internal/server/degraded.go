package server

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

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
	answers  *prometheus.CounterVec
	// active is set by a degraded answer and cleared by a normal one, so the
	// log gets one line per episode instead of one per request.
	active atomic.Bool
}

// canDegrade reports whether a failed Recommend may be answered from the
// in-process snapshot: the profile load failed for want of Redis (down,
// unreachable, or over its budget), and the caller is still waiting.
// Anything else (a bug, corrupt data, the caller's own deadline) stays an
// error.
func (d *degradation) canDegrade(ctx context.Context, err error) bool {
	if d.fallback == nil || ctx.Err() != nil {
		return false
	}
	return errors.Is(err, recommend.ErrProfileBudget) || isUnavailable(err)
}

// recommend answers req degraded after err.
func (d *degradation) recommend(ctx context.Context, req recommend.Request, err error) recommend.Result {
	d.answers.WithLabelValues("Recommend").Inc()
	if !d.active.Swap(true) {
		d.log.WarnContext(ctx, "profile store unavailable: answering Recommend degraded (not personalized) until it returns", "err", err)
	}
	return d.fallback.Fallback(req)
}

// normal notes a normal answer, ending a degraded episode.
func (d *degradation) normal(ctx context.Context) {
	if d.active.Load() && d.active.Swap(false) {
		d.log.InfoContext(ctx, "profile store answers again: Recommend personalized")
	}
}
