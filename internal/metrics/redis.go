package metrics

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisHook returns a go-redis hook that observes every command's duration
// in RedisLatency and counts failures in RedisErrors. Add it with
// client.AddHook; on a cluster client it sees each command once, retries and
// redirects included in its duration.
func (s *Set) RedisHook() redis.Hook { return redisHook{s} }

type redisHook struct{ s *Set }

var _ redis.Hook = redisHook{}

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook {
	return next
}

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.observe(commandName(cmd.Name()), time.Since(start), err)
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.observe("pipeline", time.Since(start), err)
		return err
	}
}

func (h redisHook) observe(command string, d time.Duration, err error) {
	h.s.RedisLatency.WithLabelValues(command).Observe(d.Seconds())
	if err != nil && !errors.Is(err, redis.Nil) {
		h.s.RedisErrors.WithLabelValues(command).Inc()
	}
}

// commandName is the command label of a go-redis command name: lower case,
// and never empty.
func commandName(name string) string {
	if name == "" {
		return "unknown"
	}
	return strings.ToLower(name)
}
