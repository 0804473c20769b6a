package daemon_test

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/redistest"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// A BatchRecommend stream paused by flow control (its reader stopped
// reading) while Redis goes down and comes back finishes once the reader
// reads again: every user answered, status OK. Its reader resumes during
// the outage in one stream, right after the restart in the other. (Both
// ended Unavailable before push loads waited for outages: even the second,
// as go-redis' pool answers with its last dial error for up to a second
// after Redis is back.)
func TestPausedPushStreamFinishesAfterOutage(t *testing.T) {
	rs := redistest.StartServer(t, "")
	r := start(t, func(c *daemon.Config) { c.RedisAddr = rs.Addr })
	ctx := context.Background()
	v1, err := r.reg.Publish(ctx, model(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the model", func() bool { return r.servingVersion(t) == v1.Name() })
	users := make([]string, 1000)
	evs := make([]*recsysv1.Event, len(users))
	for i := range users {
		users[i] = fmt.Sprintf("p%d", i)
		evs[i] = &recsysv1.Event{EventId: "e" + users[i], UserId: users[i], ItemId: fmt.Sprintf("i%d", i%50),
			Type: recsysv1.EventType_EVENT_TYPE_VIEW, Timestamp: timestamppb.Now()}
	}
	if _, err := r.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: evs}); err != nil {
		t.Fatal(err)
	}
	after := openSlowStreams(t, r, 1, 1, users)
	during := openSlowStreams(t, r, 1, 1, users)
	after.first.Wait()
	during.first.Wait()

	rs.Stop()
	// One stream's reader reads again while Redis is down: its next load
	// waits for Redis instead of ending the stream.
	close(during.release)
	eventually(t, "a push load waiting for Redis", func() bool { return r.d.PushProfiles().Waits() > 0 })
	rs.Restart(t)
	// The other's reads again right after the restart, while the client's
	// connection pool may still refuse to dial for a moment.
	close(after.release)
	after.done.Wait()
	during.done.Wait()
	for name, s := range map[string]*slowStreams{"resumed after the restart": after, "resumed during the outage": during} {
		if s.codes[codes.OK] != 1 || s.got != len(users)-1 {
			t.Errorf("stream %s: ended %v with %d messages after the first, want OK with %d", name, s.codes, s.got, len(users)-1)
		}
	}
}
