package server

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/recsys-dev/recsys/internal/periodic"
)

// Pinger answers when its backend can serve (Redis: PING).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Readiness sets health from the backend's answers (see Server.setBackend
// for what each health name reports while Redis is down).
type Readiness struct {
	srv     *Server
	ping    Pinger
	timeout time.Duration
	ready   atomic.Bool
	checked atomic.Bool
}

// NewReadiness returns a prober of p for s. Health stays NOT_SERVING until
// the first successful Check.
func NewReadiness(s *Server, p Pinger) *Readiness {
	return &Readiness{srv: s, ping: p, timeout: time.Second}
}

// Check pings once and sets health accordingly; it reports readiness.
func (r *Readiness) Check(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	err := r.ping.Ping(ctx)
	ok := err == nil
	if was := r.ready.Swap(ok); was != ok || !r.checked.Swap(true) {
		if ok {
			r.srv.log.Info("backend answers, health SERVING")
		} else {
			r.srv.log.Warn("backend does not answer: events, catalog and models NOT_SERVING; Recommend degraded",
				"err", err, "recommend_serving", r.srv.canFallback && r.srv.everUp.Load())
		}
		r.srv.setBackend(ok)
	}
	return ok
}

// Run checks every interval until ctx ends.
func (r *Readiness) Run(ctx context.Context, every time.Duration) error {
	return periodic.Run(ctx, "readiness check", every, r.srv.log, func(ctx context.Context) error {
		r.Check(ctx) // logs what changes itself
		return nil
	})
}
