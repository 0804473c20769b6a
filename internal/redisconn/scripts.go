package redisconn

import (
	"context"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ScriptCall is one script invocation of a pipelined batch; after
// RunScripts, Cmd holds its result or error.
type ScriptCall struct {
	Script *redis.Script
	Keys   []string
	Args   []any
	Cmd    *redis.Cmd
}

// RunScripts runs the calls in one pipeline with EVALSHA. Calls the server
// does not know the script of (first use, SCRIPT FLUSH, a failover to a
// fresh node) are sent again in a second round trip with the full source
// (EVAL), which also caches it; a script must therefore be safe to run again
// after a NOSCRIPT reply (it was not run). Each call's outcome is in its Cmd.
func RunScripts(ctx context.Context, rdb redis.Cmdable, calls ...*ScriptCall) {
	pipe := rdb.Pipeline()
	for _, c := range calls {
		c.Cmd = c.Script.EvalSha(ctx, pipe, c.Keys, c.Args...)
	}
	_, _ = pipe.Exec(ctx) // every call's error is read from its Cmd
	var retry []*ScriptCall
	for _, c := range calls {
		if IsNoScript(c.Cmd.Err()) {
			retry = append(retry, c)
		}
	}
	if len(retry) == 0 {
		return
	}
	pipe = rdb.Pipeline()
	for _, c := range retry {
		c.Cmd = c.Script.Eval(ctx, pipe, c.Keys, c.Args...)
	}
	_, _ = pipe.Exec(ctx)
}

// IsNoScript reports whether err is Redis' NOSCRIPT reply.
func IsNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || strings.HasPrefix(err.Error(), "NOSCRIPT"))
}
