package redisconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"
)

// replyError is an error reply of Redis, as go-redis returns it.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

var _ redis.Error = replyError("")

func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"client closed", redis.ErrClosed, true},
		{"pool timeout", fmt.Errorf("load profile: %w", redis.ErrPoolTimeout), true},
		{"connection refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{"connection cut", io.EOF, true},
		{"loading", replyError("LOADING Redis is loading the dataset in memory"), true},
		{"cluster down", fmt.Errorf("x: %w", replyError("CLUSTERDOWN The cluster is down")), true},
		{"demoted master", replyError("READONLY You can't write against a read only replica."), true},
		{"missing key", redis.Nil, false},
		{"wrong type", replyError("WRONGTYPE Operation against a key holding the wrong kind of value"), false},
		{"cancelled", context.Canceled, false},
		{"a bug", errors.New("index out of range"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Unavailable(tc.err); got != tc.want {
				t.Errorf("Unavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
