package daemon_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/ctl"
	"github.com/recsys-dev/recsys/internal/daemon"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// The push sender (role push) gets BatchRecommend through recsysctl push,
// as JSON Lines; a product page (role pages) may not call it.
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
	client := func(token string) *ctl.Client {
		opts, err := ctl.ConnOptions{Token: token}.DialOptions()
		if err != nil {
			t.Fatal(err)
		}
		c, err := ctl.Dial(r.d.Addr().String(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	for _, args := range [][]string{
		{"--users", "u1,nobody,u2", "--count", "2"},
		{"--segment", "new", "--count", "2"},
	} {
		var out bytes.Buffer
		if err := ctl.PushCommand(ctx, client(pushToken), args, &out, io.Discard); err != nil {
			t.Fatalf("push %v: %v", args, err)
		}
		var users []string
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var m struct {
				UserID      string `json:"userId"`
				Items       []any  `json:"items"`
				EmptyReason string `json:"emptyReason"`
			}
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatalf("push %v: line %q: %v", args, line, err)
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
		if args[0] == "--segment" {
			want = "u2 u1" // most recently active first
		}
		if got := strings.Join(users, " "); got != want {
			t.Errorf("push %v: users %q, want %q", args, got, want)
		}
	}
	err := ctl.PushCommand(ctx, client(pagesToken), []string{"--users", "u1"}, io.Discard, io.Discard)
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("pages caller: got %v, want PermissionDenied", err)
	}
}
