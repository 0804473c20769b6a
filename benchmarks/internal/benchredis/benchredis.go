// Package benchredis starts a redis-server of a benchmark's own, so that
// its numbers do not depend on other users of a shared one.
package benchredis

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Start starts a redis-server without persistence on a free port of
// 127.0.0.1, in a temporary directory named after name, and returns once it
// answers PING. stop ends the server and removes the directory.
func Start(ctx context.Context, name string) (stop func(), addr string, err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	dir, err := os.MkdirTemp("", name+"-redis")
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, "", fmt.Errorf("start redis-server: %w", err)
	}
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		_ = os.RemoveAll(dir)
	}
	addr = "127.0.0.1:" + strconv.Itoa(port)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer func() { _ = rdb.Close() }()
	for i := 0; ; i++ {
		if err = rdb.Ping(ctx).Err(); err == nil {
			return stop, addr, nil
		}
		if i == 100 || ctx.Err() != nil {
			stop()
			return nil, "", fmt.Errorf("redis-server on %s: %w", addr, err)
		}
		<-time.After(50 * time.Millisecond) // the process has no readiness signal but answering
	}
}
