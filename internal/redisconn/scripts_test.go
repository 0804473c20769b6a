package redisconn_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/redisconn"
	"github.com/recsys-dev/recsys/internal/redistest"
)

// A script the server has never seen (its body is unique to this run) gets
// NOSCRIPT from EVALSHA; RunScripts sends it again with its source, every
// call runs exactly once, and a later batch runs from the server's cache.
func TestRunScriptsRetriesUnknownScripts(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	ctx := context.Background()
	script := redis.NewScript("-- " + strconv.FormatInt(time.Now().UnixNano(), 10) + "\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])")
	if known, err := script.Exists(ctx, rdb).Result(); err != nil || known[0] {
		t.Fatalf("the new script is known to the server already (%v, %v)", known, err)
	}
	key := prefix + ":counter"
	batch := func(first int) []*redisconn.ScriptCall {
		var calls []*redisconn.ScriptCall
		for i := range 3 {
			calls = append(calls, &redisconn.ScriptCall{Script: script, Keys: []string{key}, Args: []any{first + i}})
		}
		return calls
	}
	for round, first := range []int{1, 10} { // round 0: unknown script; round 1: cached
		calls := batch(first)
		redisconn.RunScripts(ctx, rdb, calls...)
		for i, c := range calls {
			if err := c.Cmd.Err(); err != nil {
				t.Fatalf("round %d, call %d: %v", round, i, err)
			}
		}
	}
	// 1+2+3 + 10+11+12: each call ran once.
	if got := rdb.Get(ctx, key).Val(); got != "39" {
		t.Errorf("counter = %s, want 39", got)
	}
	if known, _ := script.Exists(ctx, rdb).Result(); !known[0] {
		t.Error("the script is not cached after RunScripts sent its source")
	}
}
