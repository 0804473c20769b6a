package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestOutageWarningsAreRateLimited: during an outage every failed call is
// Unavailable, but the warning is one line per outageLogEvery that counts
// the failures it did not log.
func TestOutageWarningsAreRateLimited(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	now := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	o := newOutageLog(log, func() time.Time { return now })
	down := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	for range 100 {
		if err := toStatus(context.Background(), log, o, "/recsys.v1.EventService/RecordEvents", down); status.Code(err) != codes.Unavailable {
			t.Fatalf("got %v, want Unavailable", err)
		}
	}
	if got := strings.Count(logs.String(), "backend unavailable"); got != 1 {
		t.Fatalf("%d warning lines for 100 failed calls, want 1:\n%s", got, logs.String())
	}
	now = now.Add(outageLogEvery)
	_ = toStatus(context.Background(), log, o, "/recsys.v1.EventService/RecordEvents", down)
	if got := strings.Count(logs.String(), "backend unavailable"); got != 2 || !strings.Contains(logs.String(), "failed_calls_not_logged_since_last_line=99") {
		t.Errorf("after %v: want a second line counting 99 unlogged failures, got:\n%s", outageLogEvery, logs.String())
	}
	if lvl := callLogLevel(codes.Unavailable); lvl != logging.LevelInfo {
		t.Errorf("call line level for Unavailable = %v, want INFO", lvl)
	}
}
