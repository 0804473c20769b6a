package server

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/recsys-dev/recsys/internal/recommend"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// badIDRecommender answers with an item id protobuf cannot encode, as a
// model trained before the id rule could have.
type badIDRecommender struct{ deadlineProbe }

func (badIDRecommender) Recommend(context.Context, recommend.Request) (recommend.Result, error) {
	return recommend.Result{Items: []recommend.Item{{ItemID: "i1"}, {ItemID: "i271\xff"}}}, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestUnencodableAnswerIsAnHonestInternal injects an answer that cannot be
// encoded: the client gets Internal, and the server's own log and counter
// say so (before, the log said grpc.code=OK).
func TestUnencodableAnswerIsAnHonestInternal(t *testing.T) {
	var logs syncBuffer
	p := &badIDRecommender{}
	s, err := New(Config{}, Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Recommender: p, Serving: p, Profiles: p, Catalog: p, Models: p})
	if err != nil {
		t.Fatal(err)
	}
	lis := bufconn.Listen(1 << 20)
	done := make(chan error, 1)
	go func() { done <- s.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = conn.Close()
		s.GRPC().Stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	rec := recsysv1.NewRecommendationServiceClient(conn)
	_, err = rec.Recommend(context.Background(), &recsysv1.RecommendRequest{UserId: "u", Count: 2})
	if got := status.Code(err); got != codes.Internal {
		t.Fatalf("Recommend = %v, want Internal", err)
	}
	if strings.Contains(status.Convert(err).Message(), "UTF-8") {
		t.Errorf("the cause reached the client: %v", err)
	}
	s.GRPC().Stop() // the finish-call log line is written before Serve returns
	if got := counterSum(t, s, "recsys_unencodable_answers_total"); got != 1 {
		t.Errorf("recsys_unencodable_answers_total = %v, want 1", got)
	}
	out := logs.String()
	var finish string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "grpc.method=Recommend") && strings.Contains(l, "grpc.code=") {
			finish = l
		}
	}
	if !strings.Contains(finish, "grpc.code=Internal") {
		t.Errorf("finish-call log line %q, want grpc.code=Internal\nall logs:\n%s", finish, out)
	}
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "cannot be encoded") {
		t.Errorf("no error-level log naming the cause:\n%s", out)
	}
}

// counterSum gathers the server's collectors and sums the counter name.
func counterSum(t *testing.T, s *Server, name string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collectors()...)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range fams {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
