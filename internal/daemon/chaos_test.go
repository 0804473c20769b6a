package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/pushsched"
	"github.com/recsys-dev/recsys/internal/redistest"
	"github.com/recsys-dev/recsys/internal/server"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// slowStreams holds BatchRecommend streams that read one message and then
// nothing until released (flow control pauses their work on the server).
type slowStreams struct {
	first   sync.WaitGroup // one Done per stream at its first message (or its end)
	release chan struct{}
	done    sync.WaitGroup
	mu      sync.Mutex
	codes   map[codes.Code]int
	got     int // messages read by the streams that drained
}

// openSlowStreams opens n streams over users; the first drain of them read
// to the end once released, the others are cancelled then.
func openSlowStreams(t *testing.T, r *running, n, drain int, users []string) *slowStreams {
	t.Helper()
	s := &slowStreams{release: make(chan struct{}), codes: map[codes.Code]int{}}
	for i := range n {
		s.first.Add(1)
		s.done.Add(1)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			defer s.done.Done()
			defer cancel()
			firstDone := false
			markFirst := func() {
				if !firstDone {
					firstDone = true
					s.first.Done()
				}
			}
			defer markFirst()
			code := codes.OK
			defer func() {
				s.mu.Lock()
				s.codes[code]++
				s.mu.Unlock()
			}()
			st, err := r.rec.BatchRecommend(ctx, &recsysv1.BatchRecommendRequest{UserIds: users, Count: 20})
			if err != nil {
				code = status.Code(err)
				return
			}
			if _, err := st.Recv(); err != nil {
				code = status.Code(err)
				return
			}
			markFirst()
			<-s.release
			if i >= drain {
				cancel()
				code = codes.Canceled
				return
			}
			for {
				_, err := st.Recv()
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil {
					code = status.Code(err)
					return
				}
				s.mu.Lock()
				s.got++
				s.mu.Unlock()
			}
		}()
	}
	return s
}

// TestChaos runs recsysd on a redis-server of its own under a load of
// Recommend and RecordEvents calls while 100 BatchRecommend streams read
// slowly; a new model is published (hot swap), then Redis is killed and
// started again. Every acknowledged event must be in the profiles and the
// stream, and the push budget's own accounting must never have held more
// bytes than the budget, and nothing once the streams are gone.
func TestChaos(t *testing.T) {
	rs := redistest.StartServer(t, "", "--appendonly", "yes", "--appendfsync", "always")
	// Small, so the streams' work really waits for it; the streams' bases
	// (84 KiB each at count 20) may take half of it: 100 fit in 24 MiB.
	const budget = 24 << 20
	r := start(t, func(c *daemon.Config) {
		c.RedisAddr = rs.Addr
		c.ProfileBudget = time.Second // see TestRedisOutageUnderLoad
		c.RateLimits = server.RateLimits{}
		c.Push = pushsched.Config{MemoryBudget: budget, StreamsPerCaller: 200}
	})
	ctx := context.Background()
	v1, err := r.reg.Publish(ctx, model(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first model", func() bool { return r.servingVersion(t) == v1.Name() })

	// 1,000 users with history: personalized push answers of 20 items,
	// about 400 KB per stream, far more than HTTP/2 lets through unread.
	users := make([]string, 1000)
	evs := make([]*recsysv1.Event, len(users))
	for i := range users {
		users[i] = fmt.Sprintf("p%d", i)
		evs[i] = &recsysv1.Event{EventId: "push-seed-" + users[i], UserId: users[i], ItemId: fmt.Sprintf("i%d", i%50),
			Type: recsysv1.EventType_EVENT_TYPE_VIEW, Timestamp: timestamppb.Now()}
	}
	if _, err := r.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: evs}); err != nil {
		t.Fatal(err)
	}

	l := startLoad(t, r, 3, 2)
	began := time.Now()
	eventually(t, "personalized answers and acknowledged writes", func() bool {
		return l.seen(began, false, func(o outcome) bool { return o.code == codes.OK && o.personalized && !o.degraded }) &&
			l.seen(began, true, func(o outcome) bool { return o.code == codes.OK })
	})
	streams := openSlowStreams(t, r, 100, 5, users)
	streams.first.Wait()
	push := r.d.Push()
	if open := push.OpenStreams(); open != 100 {
		t.Errorf("open streams: %d, want 100 (refused: %v)", open, streams.codes)
	}

	// Hot swap under load.
	v2, err := r.reg.Publish(ctx, model(t, 0.3))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the second model", func() bool { return r.servingVersion(t) == v2.Name() })

	// Redis killed and started again.
	stoppedAt := time.Now()
	rs.Stop()
	eventually(t, "degraded answers and refused writes", func() bool {
		return l.seen(stoppedAt, false, func(o outcome) bool { return o.degraded }) &&
			l.seen(stoppedAt, true, func(o outcome) bool { return o.code == codes.Unavailable })
	})
	rs.Restart(t)
	restartedAt := time.Now()
	eventually(t, "personalized answers and writes after the restart", func() bool {
		return l.seen(restartedAt, false, func(o outcome) bool { return o.code == codes.OK && o.personalized && !o.degraded }) &&
			l.seen(restartedAt, true, func(o outcome) bool { return o.code == codes.OK })
	})

	close(streams.release)
	streams.done.Wait()
	// The streams that read on finish: the outage paused them, it did
	// not end them (TestPausedPushStreamFinishesAfterOutage).
	if streams.codes[codes.OK] != 5 || streams.got != 5*(len(users)-1) {
		t.Errorf("the 5 streams that read to the end: ended %v with %d messages after the first ones, want 5 OK with %d", streams.codes, streams.got, 5*(len(users)-1))
	}
	l.finish()
	for _, o := range l.recs {
		if o.code != codes.OK {
			t.Errorf("Recommend failed: %v %s", o.code, o.msg)
		}
	}
	for _, o := range l.writes {
		if o.code != codes.OK && o.code != codes.Unavailable {
			t.Errorf("RecordEvents failed with %v %s, want only Unavailable", o.code, o.msg)
		}
	}
	l.checkAcked(t, r)

	if peak := push.PeakInFlight(); peak > budget || peak == 0 {
		t.Errorf("push budget: peak %d bytes in flight, budget %d", peak, budget)
	}
	eventually(t, "the push budget released", func() bool { return push.InFlight() == 0 && push.OpenStreams() == 0 })
	t.Logf("streams ended %v (%d messages read by the 5 that drained); push peak %d of %d bytes, %d waits for the budget; %d Recommend, %d RecordEvents",
		streams.codes, streams.got, push.PeakInFlight(), int64(budget), push.Waits(), len(l.recs), len(l.writes))
}
