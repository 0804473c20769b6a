// Package redistest connects tests to the real Redis that the README's test
// command provides (see .ci/with-redis.sh, or .ci/with-redis-cluster.sh for a
// Redis Cluster) and gives each test a key prefix of its own, so tests can
// run in parallel against one server.
//
// With REDIS_CLUSTER_ADDRS set (comma-separated node addresses) Client
// returns a cluster client and Addr the address list, so the same tests run
// against a cluster; otherwise REDIS_ADDR names a single server.
//
// Without a reachable server a test is skipped on a developer machine and
// fails when the CI environment variable is set: in CI a missing Redis is a
// failure, never a silent skip.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterAddrs returns the node addresses of the test cluster
// (REDIS_CLUSTER_ADDRS), or nil when the tests run on a single server.
func ClusterAddrs() []string {
	v := strings.TrimSpace(os.Getenv("REDIS_CLUSTER_ADDRS"))
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// Cluster reports whether the tests run against a Redis Cluster.
func Cluster() bool { return len(ClusterAddrs()) > 0 }

// Addr is the address of the test Redis as recsysd's --redis-addr takes it:
// the comma-separated cluster nodes when REDIS_CLUSTER_ADDRS is set, else
// REDIS_ADDR, else 127.0.0.1:6379.
func Addr() string {
	if a := ClusterAddrs(); len(a) > 0 {
		return strings.Join(a, ",")
	}
	if a := os.Getenv("REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// Client returns a client of the test Redis (a *redis.ClusterClient when
// REDIS_CLUSTER_ADDRS is set, else a *redis.Client), closed when the test
// ends.
func Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	var c redis.UniversalClient
	if addrs := ClusterAddrs(); len(addrs) > 0 {
		// Re-read the slot map often: failover tests kill masters, and
		// go-redis otherwise keeps a dead master's slots for a minute.
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ClusterStateReloadInterval: 500 * time.Millisecond})
	} else {
		c = redis.NewClient(&redis.Options{Addr: Addr()})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := ping(ctx, c); err != nil {
		_ = c.Close()
		msg := "no Redis at " + Addr() + " (run tests with `make test`, which starts one): " + err.Error()
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close redis client: %v", err)
		}
	})
	return c
}

// ping checks the server, or every shard of a cluster.
func ping(ctx context.Context, c redis.UniversalClient) error {
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.ForEachShard(ctx, func(ctx context.Context, n *redis.Client) error {
			return n.Ping(ctx).Err()
		})
	}
	return c.Ping(ctx).Err()
}

// Prefix returns a key prefix unique to this test run. Every key the test
// creates under it is deleted when the test ends.
func Prefix(t testing.TB, c redis.UniversalClient) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	p := "test-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		keys, err := Keys(ctx, c, p)
		if err != nil {
			t.Errorf("list test keys: %v", err)
			return
		}
		if err := Del(ctx, c, keys); err != nil {
			t.Errorf("delete test keys: %v", err)
		}
	})
	return p
}

// Del deletes keys one command per key (in one pipeline), so keys of
// different cluster slots can be deleted together.
func Del(ctx context.Context, c redis.UniversalClient, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, k)
		}
		return nil
	})
	return err
}

// Keys lists every key that starts with prefix (by SCAN, never KEYS). On a
// cluster it scans every master.
func Keys(ctx context.Context, c redis.UniversalClient, prefix string) ([]string, error) {
	match := escapeGlob(prefix) + "*"
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		return scan(ctx, c, match)
	}
	var mu sync.Mutex
	var out []string
	err := cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
		keys, err := scan(ctx, n, match)
		if err != nil {
			return fmt.Errorf("scan %s: %w", n.Options().Addr, err)
		}
		mu.Lock()
		out = append(out, keys...)
		mu.Unlock()
		return nil
	})
	return out, err
}

func scan(ctx context.Context, c redis.Cmdable, match string) ([]string, error) {
	var out []string
	iter := c.Scan(ctx, 0, match, 1000).Iterator()
	for iter.Next(ctx) {
		out = append(out, iter.Val())
	}
	return out, iter.Err()
}

func escapeGlob(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return string(b)
}
