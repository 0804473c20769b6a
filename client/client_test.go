package client_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/client"
	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/redistest"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// recsysdAddr is the address of the recsysd TestMain starts for the tests
// and examples (a real one, on the test Redis, with tokens).
var recsysdAddr string

const (
	operatorToken = "client-test-operator"
	pagesToken    = "client-test-pages"
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	prefix := fmt.Sprintf("client-test-%d-%d:", os.Getpid(), time.Now().UnixNano())
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Addr()})
	defer func() {
		ctx := context.Background()
		if keys, err := redistest.Keys(ctx, rdb, prefix); err == nil {
			_ = redistest.Del(ctx, rdb, keys)
		}
		_ = rdb.Close()
	}()
	d, err := daemon.New(daemon.Config{
		GRPCAddr: "127.0.0.1:0", RedisAddr: redistest.Addr(), Prefix: prefix,
		Tokens: access.TokenLine(access.Operator, "operator", operatorToken) + "\n" +
			access.TokenLine(access.Pages, "pages", pagesToken),
		ReadyCheck: 20 * time.Millisecond,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Fprintln(os.Stderr, "start recsysd:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	recsysdAddr = d.Addr().String()
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "recsysd:", err)
		return 1
	}
	return code
}

// A caller's build must not compile the server: the package imports no
// internal package, no Redis client, no Prometheus.
func TestNoServerDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/recsys-dev/recsys/client").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps printed %d packages, want the client's dependencies:\n%s", len(deps), out)
	}
	for _, dep := range deps {
		if strings.Contains(dep, "/internal/") && strings.HasPrefix(dep, "github.com/recsys-dev/recsys/") ||
			strings.Contains(dep, "go-redis") || strings.Contains(dep, "prometheus") || strings.Contains(dep, "gonum") {
			t.Errorf("the client depends on %s", dep)
		}
	}
}

// The token decides what a caller may do, through the real server's
// authorization; a missing token is Unauthenticated.
func TestTokens(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		opts      []client.Option
		recommend codes.Code
		delete    codes.Code
	}{
		{"operator", []client.Option{client.WithToken(operatorToken)}, codes.OK, codes.OK},
		{"pages", []client.Option{client.WithToken(pagesToken)}, codes.OK, codes.PermissionDenied},
		{"no token", nil, codes.Unauthenticated, codes.Unauthenticated},
		{"wrong token", []client.Option{client.WithToken("nope")}, codes.Unauthenticated, codes.Unauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := client.New(recsysdAddr, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.Recommendations.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u1", Count: 3})
			if got := status.Code(err); got != tc.recommend {
				t.Errorf("Recommend: got %v, want %v", err, tc.recommend)
			}
			_, err = c.Events.DeleteUser(ctx, &recsysv1.DeleteUserRequest{UserId: "nobody"})
			if got := status.Code(err); got != tc.delete {
				t.Errorf("DeleteUser: got %v, want %v", err, tc.delete)
			}
		})
	}
}

func TestOptionErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  client.Option
		want string
	}{
		{"negative timeout", client.WithTimeout(-time.Second), "negative timeout"},
		{"too many retries", client.WithRetries(9), "retries 9"},
		{"missing CA file", client.WithTLSFiles(client.TLSFiles{CAFile: "/nonexistent/ca.pem"}), "server CA"},
		{"certificate without key", client.WithTLSFiles(client.TLSFiles{CertFile: "c.pem"}), "both the certificate and the key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.New("127.0.0.1:1", tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// The default deadline applies when the context has none: a call to an
// address nobody answers (retries off) ends with DeadlineExceeded or
// Unavailable, not never.
func TestDefaultDeadline(t *testing.T) {
	c, err := client.New(redistest.FreeAddr(t), client.WithTimeout(50*time.Millisecond), client.WithRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Models.GetModel(context.Background(), &recsysv1.GetModelRequest{}, grpc.WaitForReady(true))
	if got := status.Code(err); got != codes.DeadlineExceeded {
		t.Errorf("got %v, want DeadlineExceeded", err)
	}
}

// Example: record a few events and ask for recommendations. A user the
// model does not know yet gets the popular items (source POPULAR).
func Example() {
	c, err := client.New(recsysdAddr, client.WithToken(operatorToken))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	ctx := context.Background()
	now := timestamppb.New(time.Now().Add(-time.Minute))
	res, err := c.Events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{
		{EventId: "example-1", UserId: "example-user", ItemId: "example-item", Type: recsysv1.EventType_EVENT_TYPE_VIEW, Timestamp: now},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("accepted:", res.GetAccepted()+res.GetDuplicates())
	rec, err := c.Recommendations.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "someone-new", Count: 5})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("source:", rec.GetSource())
	// Output:
	// accepted: 1
	// source: SOURCE_POPULAR
}
