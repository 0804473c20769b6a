package pushsched

import (
	"context"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/redisconn"
	"github.com/recsys-dev/recsys/internal/redistest"
)

// Profiles retries a load through an outage for at most OutageWait, then
// returns the outage's error; a load that does not fail for an outage is
// not retried.
func TestProfilesWaitOutagesForAtMostOutageWait(t *testing.T) {
	rs := redistest.StartServer(t, "")
	rdb, err := redisconn.New(redisconn.Options{Addr: rs.Addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	store, err := profile.NewStore(rdb, profile.Config{Prefix: "outage"})
	if err != nil {
		t.Fatal(err)
	}
	p := WaitOutages(store, Config{OutageWait: 300 * time.Millisecond})
	ctx := context.Background()
	if _, err := p.LoadMany(ctx, []string{"u"}); err != nil || p.Waits() != 0 {
		t.Fatalf("with Redis up: %v, %d waits; want no error, no wait", err, p.Waits())
	}
	if _, err := p.LoadMany(ctx, []string{""}); err == nil || p.Waits() != 0 {
		t.Fatalf("an empty id: %v, %d waits; want its error at once", err, p.Waits())
	}
	rs.Stop()
	began := time.Now()
	_, err = p.LoadMany(ctx, []string{"u"})
	if !redisconn.Unavailable(err) || p.Waits() == 0 {
		t.Fatalf("with Redis down: %v after %d waits; want the outage's error after waiting", err, p.Waits())
	}
	// It gave up only once OutageWait had passed.
	if d := time.Since(began); d < 300*time.Millisecond {
		t.Errorf("gave up after %v, want OutageWait (300ms) first", d)
	}
	waits := p.Waits()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.LoadMany(cctx, []string{"u"}); err == nil || p.Waits() != waits {
		t.Errorf("a cancelled call: %v, %d more waits; want its error at once", err, p.Waits()-waits)
	}
}
