package daemon_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/client"
	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/daemon"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// The push sender (role push) gets BatchRecommend through the public
// client, streamed per user; a product page (role pages) may not call it.
// (recsysctl push's JSON Lines are tested in cmd/recsysctl.)
func TestPushThroughTheDaemon(t *testing.T) {
	const pushToken, pagesToken = "test-push-token", "test-pages-token"
	r := start(t, func(c *daemon.Config) {
		c.Tokens += "\n" + access.TokenLine(access.Push, "push-sender", pushToken) +
			"\n" + access.TokenLine(access.Pages, "pages", pagesToken)
	})
	ctx := context.Background()
	if _, err := r.reg.Publish(ctx, model(t, 0)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a model", func() bool { return r.servingVersion(t) != "" })
	if _, err := r.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{
		{EventId: "1", UserId: "u1", ItemId: "i3", Type: recsysv1.EventType_EVENT_TYPE_VIEW, Timestamp: timestamppb.New(time.Now().Add(-2 * time.Minute))},
		{EventId: "2", UserId: "u2", ItemId: "i7", Type: recsysv1.EventType_EVENT_TYPE_VIEW, Timestamp: timestamppb.New(time.Now().Add(-time.Minute))},
	}}); err != nil {
		t.Fatal(err)
	}
	as := func(token string) *client.Client {
		c, err := client.New(r.d.Addr().String(), client.WithToken(token))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	push := func(c *client.Client, req *recsysv1.BatchRecommendRequest) ([]*recsysv1.BatchRecommendResponse, error) {
		stream, err := c.Recommendations.BatchRecommend(ctx, req)
		if err != nil {
			return nil, err
		}
		var out []*recsysv1.BatchRecommendResponse
		for {
			m, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return out, err
			}
			out = append(out, m)
		}
	}
	for _, args := range []*recsysv1.BatchRecommendRequest{
		{UserIds: []string{"u1", "nobody", "u2"}, Count: 2},
		{Segment: &recsysv1.SegmentSelector{Lifecycle: recsysv1.Lifecycle_LIFECYCLE_NEW}, Count: 2},
	} {
		answers, err := push(as(pushToken), args)
		if err != nil {
			t.Fatalf("push %v: %v", args, err)
		}
		var users []string
		for _, a := range answers {
			m := struct {
				UserID      string
				Items       []*recsysv1.ScoredItem
				EmptyReason string
			}{a.GetUserId(), a.GetItems(), ""}
			if a.GetEmptyReason() != 0 {
				m.EmptyReason = a.GetEmptyReason().String()
			}
			// u1 and u2 have histories the model knows: two items each;
			// nobody was never seen.
			wantItems, wantReason := 2, ""
			if m.UserID == "nobody" {
				wantItems, wantReason = 0, "PUSH_EMPTY_REASON_UNKNOWN_USER"
			}
			if len(m.Items) != wantItems || m.EmptyReason != wantReason {
				t.Errorf("push %v: %s got %d items, empty reason %q; want %d, %q", args, m.UserID, len(m.Items), m.EmptyReason, wantItems, wantReason)
			}
			users = append(users, m.UserID)
		}
		want := "u1 nobody u2" // in the order asked
		if args.GetSegment() != nil {
			want = "u2 u1" // most recently active first
		}
		if got := strings.Join(users, " "); got != want {
			t.Errorf("push %v: users %q, want %q", args, got, want)
		}
	}
	_, err := push(as(pagesToken), &recsysv1.BatchRecommendRequest{UserIds: []string{"u1"}, Count: 1})
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("pages caller: got %v, want PermissionDenied", err)
	}
}
