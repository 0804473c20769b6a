package redisconn

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/redis/go-redis/v9"
)

// Unavailable reports whether err is a Redis (or network) outage, as
// opposed to a bug: the connection failed or was cut, the pool is
// exhausted or closed, or Redis answered that it cannot serve now (still
// LOADING its data, CLUSTERDOWN, TRYAGAIN, MASTERDOWN, or READONLY: a write
// reached a master that a failover just demoted). Callers above the
// storage (the gRPC edge) map it to Unavailable without knowing the
// client's or the network's errors.
func Unavailable(err error) bool {
	if errors.Is(err, redis.ErrClosed) || errors.Is(err, redis.ErrPoolTimeout) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	// io.EOF: Redis closed the connection mid-command (it was killed or
	// restarted); no file is read on a request path, so EOF here is always
	// the network.
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrDeadlineExceeded) ||
		redis.HasErrorPrefix(err, "LOADING") || redis.HasErrorPrefix(err, "CLUSTERDOWN") ||
		redis.HasErrorPrefix(err, "TRYAGAIN") || redis.HasErrorPrefix(err, "MASTERDOWN") ||
		redis.HasErrorPrefix(err, "READONLY")
}
