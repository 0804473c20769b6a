package server

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/metrics"
)

// Rate is a token bucket: PerSecond tokens are added every second up to
// Burst, and each call takes one. PerSecond 0 means unlimited.
type Rate struct {
	PerSecond float64
	Burst     int
}

// RateLimits holds the rate of each role. A caller is limited by the most
// generous rate among its roles (unlimited if any of them is), in a bucket of
// its own: callers never share a bucket. A role without an entry is
// unlimited. The limits are per server process; with N replicas behind a
// balancer a caller can make N times as many calls.
type RateLimits map[access.Roles]Rate

// DefaultRateLimits are the limits recsysd starts with: generous per-caller
// ceilings that stop a runaway client, not a capacity plan.
func DefaultRateLimits() RateLimits {
	return RateLimits{
		access.Pages:    {PerSecond: 5000, Burst: 10000},
		access.Events:   {PerSecond: 2000, Burst: 4000},
		access.Push:     {PerSecond: 20, Burst: 40},
		access.Operator: {PerSecond: 500, Burst: 1000},
	}
}

// ParseRateLimits parses "role=rate[:burst],...", such as
// "pages=5000:10000,events=2000,push=0" (0: unlimited; the burst defaults to
// twice the rate, at least 1). Roles not named keep their value in base.
func ParseRateLimits(s string, base RateLimits) (RateLimits, error) {
	out := RateLimits{}
	for r, v := range base {
		out[r] = v
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("rate limit %q: want role=rate[:burst]", part)
		}
		role, err := access.ParseRole(strings.TrimSpace(name))
		if err != nil {
			return nil, fmt.Errorf("rate limit %q: %w", part, err)
		}
		rateS, burstS, hasBurst := strings.Cut(val, ":")
		rate, err := strconv.ParseFloat(rateS, 64)
		if err != nil || rate < 0 || math.IsInf(rate, 0) || math.IsNaN(rate) {
			return nil, fmt.Errorf("rate limit %q: rate must be a number >= 0", part)
		}
		burst := int(math.Max(1, math.Ceil(2*rate)))
		if hasBurst {
			if burst, err = strconv.Atoi(burstS); err != nil || burst < 1 {
				return nil, fmt.Errorf("rate limit %q: burst must be an integer >= 1", part)
			}
		}
		out[role] = Rate{PerSecond: rate, Burst: burst}
	}
	return out, nil
}

// rateFor returns the rate of a caller with roles r and the role it comes
// from; ok is false when the caller is unlimited.
func (l RateLimits) rateFor(r access.Roles) (best Rate, from access.Roles, ok bool) {
	unlimited := false
	r.Each(func(role access.Roles) {
		rate, has := l[role]
		if !has || rate.PerSecond <= 0 {
			unlimited = true
			return
		}
		if rate.PerSecond > best.PerSecond {
			best, from = rate, role
		}
	})
	return best, from, !unlimited && best.PerSecond > 0
}

// rateLimiter is the ratelimit.Limiter of the interceptor chain: one token
// bucket per caller name (from the context auth filled).
type rateLimiter struct {
	limits  RateLimits
	now     func() time.Time
	metrics *metrics.Set

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds the limiter's memory if certificates bring many names:
// beyond it, buckets that are full again (idle callers) are dropped.
const maxBuckets = 10000

func newRateLimiter(limits RateLimits, now func() time.Time, m *metrics.Set) *rateLimiter {
	return &rateLimiter{limits: limits, now: now, metrics: m, buckets: map[string]*bucket{}}
}

// RetryAfterHeader is the response header of a call refused by the rate
// limit: whole seconds until the caller's next call may pass.
const RetryAfterHeader = "retry-after"

// Limit takes a token from the caller's bucket or says why it cannot.
func (l *rateLimiter) Limit(ctx context.Context) error {
	c, ok := access.FromContext(ctx)
	if !ok {
		return nil // open methods carry no caller and are not limited
	}
	rate, role, limited := l.limits.rateFor(c.Roles)
	if !limited {
		return nil
	}
	now := l.now()
	l.mu.Lock()
	b := l.buckets[c.Name]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.dropFullLocked(now)
		}
		b = &bucket{tokens: float64(rate.Burst), last: now}
		l.buckets[c.Name] = b
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(float64(rate.Burst), b.tokens+dt*rate.PerSecond)
		b.last = now
	}
	allowed := b.tokens >= 1
	if allowed {
		b.tokens--
	}
	wait := (1 - b.tokens) / rate.PerSecond // seconds until the next token
	l.mu.Unlock()
	if !allowed {
		l.metrics.Limited(role.String())
		// gRPC callers see it as a header; the HTTP gateway turns it into
		// Retry-After.
		_ = grpc.SetHeader(ctx, metadata.Pairs(RetryAfterHeader, strconv.Itoa(max(1, int(math.Ceil(wait))))))
		return fmt.Errorf("caller %q is over its limit of %g calls/s (burst %d)", c.Name, rate.PerSecond, rate.Burst)
	}
	return nil
}

func (l *rateLimiter) dropFullLocked(now time.Time) {
	for name, b := range l.buckets {
		// A bucket idle for a minute has refilled at any rate >= burst/60.
		if now.Sub(b.last) > time.Minute {
			delete(l.buckets, name)
		}
	}
}

// DefaultKeepalive are the server's keepalive parameters: connections are
// recycled after 30 minutes (with jitter) so long-lived clients spread over
// replicas added since; idle peers are pinged every 2 minutes and dropped
// when they do not answer within 20 s. In-flight calls on a recycled
// connection get up to 10 minutes, the longest deadline cap, to finish.
func DefaultKeepalive() keepalive.ServerParameters {
	return keepalive.ServerParameters{
		MaxConnectionAge:      30 * time.Minute,
		MaxConnectionAgeGrace: 10 * time.Minute,
		Time:                  2 * time.Minute,
		Timeout:               20 * time.Second,
	}
}

// DefaultKeepalivePolicy is the enforcement policy: clients may ping at most
// every 10 s (grpc-go clients cannot be configured below that), also without
// active calls; a client that pings more often is sent GOAWAY
// (ENHANCE_YOUR_CALM, "too_many_pings") and disconnected.
func DefaultKeepalivePolicy() keepalive.EnforcementPolicy {
	return keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}
}
