// Package demostore is the demo's in-process store: a Redis-compatible
// server (github.com/alicebob/miniredis/v2) running inside recsysd, so the
// demo runs on a machine with nothing but Go. recsysd starts it when no
// --redis-addr is given. It is the demo default only: it keeps everything in
// memory, loses it on exit, and is never used by the tests of the real store.
package demostore

import (
	"fmt"
	"log/slog"

	"github.com/alicebob/miniredis/v2"
)

// Store is a running embedded server.
type Store struct {
	mr *miniredis.Miniredis
}

// Start starts the embedded server on a loopback port and logs loudly that
// it is the demo store.
func Start(log *slog.Logger) (*Store, error) {
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		return nil, fmt.Errorf("start embedded store: %w", err)
	}
	log.Warn("EMBEDDED DEMO STORE: no --redis-addr given, using an in-process Redis-compatible server; "+
		"data lives in memory and is lost on exit; do not use in production",
		"addr", mr.Addr())
	return &Store{mr: mr}, nil
}

// Addr is the address clients connect to.
func (s *Store) Addr() string { return s.mr.Addr() }

// Close stops the server.
func (s *Store) Close() { s.mr.Close() }
