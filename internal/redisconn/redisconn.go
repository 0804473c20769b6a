// Package redisconn builds the Redis client that recsysd and recsys-train
// share, so both pick a cluster client the same way and both run with the
// same outage-friendly timeouts.
//
// One address gives a single-server client; several comma-separated
// addresses (or Cluster) give a Redis Cluster client that discovers the
// other nodes from any of them. Either way the result is a
// redis.UniversalClient, which every store takes.
//
// The timeouts are short on purpose: recsysd answers product pages, and a
// Redis that does not answer within a second is treated as down (the
// request fails with Unavailable or, for Recommend, is answered degraded)
// instead of holding the caller. ContextTimeoutEnabled makes go-redis honour
// the deadline of each call's context, so a per-call budget shorter than
// ReadTimeout really bounds the wait.
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options configure the client. Zero durations and MaxRetries take the
// defaults listed with each field.
type Options struct {
	// Addr is one host:port, or comma-separated cluster nodes.
	Addr string
	// Cluster forces a cluster client even for a single address (a
	// cluster's configuration endpoint).
	Cluster  bool
	Password string
	DB       int // not for clusters
	// DialTimeout bounds connecting, default 1s.
	DialTimeout time.Duration
	// ReadTimeout and WriteTimeout bound one command's socket I/O when the
	// call's context has no earlier deadline, default 1s each.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// PoolTimeout bounds waiting for a free connection, default 1s.
	PoolTimeout time.Duration
	// MaxRetries is how often a command failing with a network error is
	// retried (with go-redis' backoff of 8..512 ms), default 2; -1 disables
	// retries. Every write recsys sends is idempotent, so retries are safe.
	MaxRetries int
	// PoolSize is the connections per node, default go-redis' 10 per CPU.
	PoolSize int
	// ClusterReload is how often a cluster client re-reads the slot map,
	// default 2s. go-redis re-reads it on its own only after a MOVED reply
	// (or every minute), and a crashed master sends none: without this the
	// client would keep dialing the dead node for up to a minute after its
	// replica took over.
	ClusterReload time.Duration
}

// Defaults of Options.
const (
	DefaultDialTimeout   = time.Second
	DefaultIOTimeout     = time.Second
	DefaultPoolTimeout   = time.Second
	DefaultMaxRetries    = 2
	DefaultClusterReload = 2 * time.Second
)

// Addrs splits Addr into its addresses.
func (o Options) Addrs() []string {
	var out []string
	for _, a := range strings.Split(o.Addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// IsCluster reports whether New returns a cluster client.
func (o Options) IsCluster() bool { return o.Cluster || len(o.Addrs()) > 1 }

// Universal returns the go-redis options with defaults applied.
func (o Options) Universal() (*redis.UniversalOptions, error) {
	addrs := o.Addrs()
	if len(addrs) == 0 {
		return nil, errors.New("redis: no address")
	}
	if o.IsCluster() && o.DB != 0 {
		return nil, fmt.Errorf("redis: database %d given for a cluster (clusters have only database 0)", o.DB)
	}
	def := func(v, d time.Duration) time.Duration {
		if v <= 0 {
			return d
		}
		return v
	}
	retries := o.MaxRetries
	if retries == 0 {
		retries = DefaultMaxRetries
	}
	return &redis.UniversalOptions{
		Addrs:                 addrs,
		IsClusterMode:         o.IsCluster(),
		Password:              o.Password,
		DB:                    o.DB,
		DialTimeout:           def(o.DialTimeout, DefaultDialTimeout),
		ReadTimeout:           def(o.ReadTimeout, DefaultIOTimeout),
		WriteTimeout:          def(o.WriteTimeout, DefaultIOTimeout),
		PoolTimeout:           def(o.PoolTimeout, DefaultPoolTimeout),
		ContextTimeoutEnabled: true,
		MaxRetries:            retries,
		PoolSize:              o.PoolSize,
		// One dial attempt per try: go-redis would otherwise retry every
		// dial 5 times 100 ms apart, within each of the command's retries,
		// holding a caller for a second or more while Redis is down.
		DialerRetries: 1,
	}, nil
}

// New returns a client for o: a *redis.ClusterClient when o.IsCluster(),
// else a *redis.Client. It does not connect; the first command does.
func New(o Options) (redis.UniversalClient, error) {
	u, err := o.Universal()
	if err != nil {
		return nil, err
	}
	if !u.IsClusterMode {
		return redis.NewClient(u.Simple()), nil
	}
	co := u.Cluster()
	co.ClusterStateReloadInterval = o.ClusterReload
	if co.ClusterStateReloadInterval <= 0 {
		co.ClusterStateReloadInterval = DefaultClusterReload
	}
	return redis.NewClusterClient(co), nil
}

// Ping checks that c can serve: PING on a single server, PING on every
// master of a cluster (a PING to one random node says nothing about the
// shard whose master is down).
func Ping(ctx context.Context, c redis.UniversalClient) error {
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			if err := n.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("ping %s: %w", n.Options().Addr, err)
			}
			return nil
		})
	}
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// Pinger adapts Ping to an interface with a Ping(ctx) method (the server's
// readiness check).
type Pinger struct{ Client redis.UniversalClient }

// Ping pings the client's server or every cluster master.
func (p Pinger) Ping(ctx context.Context) error { return Ping(ctx, p.Client) }

// Logger adapts go-redis' internal log lines (dial failures while Redis is
// down, one per failed dial) to slog at Warn, at most one line per interval;
// the lines in between are counted in the next one. Install it once in
// main with redis.SetLogger (go-redis has one process-wide logger).
type Logger struct {
	log   *slog.Logger
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// NewLogger returns a Logger writing to log at most once per every.
func NewLogger(log *slog.Logger, every time.Duration) *Logger {
	return &Logger{log: log, every: every}
}

// Printf implements go-redis' internal.Logging.
func (l *Logger) Printf(ctx context.Context, format string, v ...any) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.last) < l.every {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	l.log.WarnContext(ctx, "redis client", "msg", fmt.Sprintf(format, v...), "similar_lines_suppressed", n)
}
