package periodic_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/periodic"
)

func TestRun(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := periodic.Run(ctx, "thing refresh", time.Millisecond, log, func(context.Context) error {
		calls++
		switch calls {
		case 1:
			return errors.New("boom") // logged, the loop goes on
		case 3:
			cancel()
			return errors.New("after the end") // not logged: ctx has ended
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("Run = %v after %d calls, want nil after 3", err, calls)
	}
	if got := logs.String(); strings.Count(got, "thing refresh failed") != 1 || !strings.Contains(got, "boom") {
		t.Errorf("log %q, want the one failure", got)
	}
	if err := periodic.Run(context.Background(), "thing refresh", 0, log, nil); err == nil ||
		!strings.Contains(err.Error(), "thing refresh interval must be > 0") {
		t.Errorf("interval 0: got %v", err)
	}
}
