package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/registry"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// deadlineProbe is a backend that records the deadline of the context its
// calls get. Nothing here touches Redis: these tests are about the edge.
type deadlineProbe struct {
	seen chan time.Time
}

func (p *deadlineProbe) record(ctx context.Context) {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Time{}
	}
	p.seen <- d
}

func (p *deadlineProbe) Recommend(ctx context.Context, _ recommend.Request) (recommend.Result, error) {
	p.record(ctx)
	return recommend.Result{}, nil
}

func (p *deadlineProbe) Similar(ctx context.Context, _ recommend.SimilarRequest) (recommend.Result, error) {
	p.record(ctx)
	return recommend.Result{}, nil
}

func (p *deadlineProbe) Rank(ctx context.Context, _ recommend.RankRequest) (recommend.RankResult, error) {
	p.record(ctx)
	return recommend.RankResult{}, nil
}

func (p *deadlineProbe) Model() *mf.Model { return nil }

func (p *deadlineProbe) Record(ctx context.Context, _ []event.Event) (profile.RecordResult, error) {
	p.record(ctx)
	return profile.RecordResult{}, nil
}

func (p *deadlineProbe) Load(ctx context.Context, _ string) (profile.Profile, error) {
	p.record(ctx)
	return profile.Profile{}, nil
}

func (p *deadlineProbe) SetOptOut(ctx context.Context, _ string, _ bool) error {
	p.record(ctx)
	return nil
}

func (p *deadlineProbe) Delete(ctx context.Context, _ string) (int, error) {
	p.record(ctx)
	return 0, nil
}

func (p *deadlineProbe) Upsert(ctx context.Context, _ []catalog.Item) error {
	p.record(ctx)
	return nil
}

func (p *deadlineProbe) Get(ctx context.Context, _ []string) ([]catalog.Item, error) {
	p.record(ctx)
	return nil, nil
}

func (p *deadlineProbe) List(ctx context.Context) ([]registry.Version, error) {
	p.record(ctx)
	return nil, nil
}

func (p *deadlineProbe) Activate(ctx context.Context, _ string) (registry.Version, error) {
	p.record(ctx)
	return registry.Version{}, nil
}

func newProbeServer(t *testing.T, cfg Config) (*Server, *deadlineProbe, *grpc.ClientConn, *bufconn.Listener) {
	t.Helper()
	p := &deadlineProbe{seen: make(chan time.Time, 1)}
	s, err := New(cfg, Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
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
	t.Cleanup(func() {
		_ = conn.Close()
		s.GRPC().Stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, p, conn, lis
}

// TestEveryMethodIsInTheTable fails when an RPC is registered without an
// entry in methodTable (it would be refused to every caller), or when an
// entry is malformed.
func TestEveryMethodIsInTheTable(t *testing.T) {
	s, _, _, _ := newProbeServer(t, Config{})
	services := s.GRPC().GetServiceInfo()
	for name, info := range services {
		if openServices[name] {
			continue
		}
		for _, m := range info.Methods {
			full := "/" + name + "/" + m.Name
			if _, ok := methodTable[full]; !ok {
				t.Errorf("%s is registered but missing from methodTable (access.go): give it roles and a deadline cap", full)
			}
		}
	}
	for _, open := range []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"} {
		if _, ok := services[open]; !ok {
			t.Errorf("%s is not registered", open)
		}
	}
	for m, p := range methodTable {
		if p.roles == 0 || !p.roles.Has(access.Operator) || p.deadline <= 0 {
			t.Errorf("%s: %+v: every method needs roles including operator and a deadline cap", m, p)
		}
	}
}

func TestMissingMethodIsDenied(t *testing.T) {
	a := &authorizer{log: slog.New(slog.NewTextHandler(io.Discard, nil))} // authentication off
	ctx := grpc.NewContextWithServerTransportStream(context.Background(), fakeStream{method: "/recsys.v1.RecommendationService/Forgotten"})
	if _, err := a.authenticate(ctx); status.Code(err) != codes.PermissionDenied {
		t.Errorf("method outside the table: %v, want PermissionDenied", err)
	}
	ctx = grpc.NewContextWithServerTransportStream(context.Background(), fakeStream{method: recsysv1.EventService_DeleteUser_FullMethodName})
	if got, err := a.authenticate(ctx); err != nil {
		t.Errorf("anonymous caller of a table method: %v", err)
	} else if c, _ := access.FromContext(got); c != access.Anonymous {
		t.Errorf("caller %+v, want anonymous", c)
	}
}

type fakeStream struct {
	grpc.ServerTransportStream
	method string
}

func (f fakeStream) Method() string { return f.method }

func TestDeadlineCaps(t *testing.T) {
	_, p, conn, _ := newProbeServer(t, Config{DeadlineCaps: map[string]time.Duration{"Recommend": 300 * time.Millisecond}})
	rec := recsysv1.NewRecommendationServiceClient(conn)
	call := func(ctx context.Context) (time.Time, time.Time, time.Time) {
		t.Helper()
		before := time.Now()
		if _, err := rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u", Count: 1}); err != nil {
			t.Fatal(err)
		}
		return before, <-p.seen, time.Now()
	}
	const limit = 300 * time.Millisecond
	// No deadline from the caller, or a much longer one: the server's cap.
	hour, cancelHour := context.WithTimeout(context.Background(), time.Hour)
	defer cancelHour()
	for name, ctx := range map[string]context.Context{"no deadline": context.Background(), "one hour": hour} {
		before, got, after := call(ctx)
		if got.IsZero() || got.Before(before.Add(limit)) || got.After(after.Add(limit)) {
			t.Errorf("%s: handler deadline %v after the call started, want the %v cap", name, got.Sub(before), limit)
		}
	}
	// A shorter deadline from the caller stays.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	want, _ := ctx.Deadline()
	if _, got, _ := call(ctx); got.IsZero() || got.Sub(want).Abs() > 50*time.Millisecond {
		t.Errorf("caller's 100ms deadline: handler got %v, want about %v", got, want)
	}
	// The table's cap applies to a method without an override.
	sim := recsysv1.NewRecommendationServiceClient(conn)
	before := time.Now()
	if _, err := sim.SimilarItems(context.Background(), &recsysv1.SimilarItemsRequest{ItemId: "i", Count: 1}); err != nil {
		t.Fatal(err)
	}
	got := <-p.seen
	if capTable := methodTable[recsysv1.RecommendationService_SimilarItems_FullMethodName].deadline; got.Before(before.Add(capTable)) || got.After(time.Now().Add(capTable)) {
		t.Errorf("SimilarItems: deadline %v after the start, want the table's %v", got.Sub(before), capTable)
	}

	for _, bad := range []map[string]time.Duration{{"NoSuchMethod": time.Second}, {"Recommend": 0}} {
		if _, err := newDeadlineCaps(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestMaxMessageSize(t *testing.T) {
	_, p, conn, _ := newProbeServer(t, Config{}) // default: 4 MiB
	rec := recsysv1.NewRecommendationServiceClient(conn)
	huge := strings.Repeat("x", 5<<20)
	_, err := rec.Recommend(context.Background(), &recsysv1.RecommendRequest{UserId: huge, Count: 1})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("5 MiB request: %v, want ResourceExhausted", err)
	}
	select {
	case <-p.seen:
		t.Error("the handler ran for an oversized request")
	default:
	}
	// Just below the limit the message is read (and then validated).
	_, err = rec.Recommend(context.Background(), &recsysv1.RecommendRequest{UserId: strings.Repeat("x", 4<<20-100), Count: 1})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "user_id:") {
		t.Errorf("4 MiB - 100 B request: %v, want InvalidArgument for user_id", err)
	}
}

// TestKeepaliveEnforcement floods the server with HTTP/2 PINGs. Under the
// default policy (at most one every 10 s) the server must answer GOAWAY
// ENHANCE_YOUR_CALM "too_many_pings"; under a policy that allows them (to
// show the configured policy is the one applied) it acknowledges them all.
func TestKeepaliveEnforcement(t *testing.T) {
	for _, tc := range []struct {
		name       string
		policy     keepalive.EnforcementPolicy
		wantGoAway bool
	}{
		{"default policy", keepalive.EnforcementPolicy{}, true},
		{"permissive policy", keepalive.EnforcementPolicy{MinTime: time.Nanosecond, PermitWithoutStream: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, lis := newProbeServer(t, Config{KeepalivePolicy: tc.policy})
			c, err := lis.Dial()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
				t.Fatal(err)
			}
			fr := http2.NewFramer(c, c)
			if err := fr.WriteSettings(); err != nil {
				t.Fatal(err)
			}
			const pings = 10
			go func() {
				for i := range pings {
					if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
						return // the server closed the connection
					}
				}
			}()
			if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			acks := 0
			for acks < pings {
				f, err := fr.ReadFrame()
				if err != nil {
					t.Fatalf("after %d ping acks: %v", acks, err)
				}
				switch f := f.(type) {
				case *http2.PingFrame:
					if f.IsAck() {
						acks++
					}
				case *http2.GoAwayFrame:
					if !tc.wantGoAway {
						t.Fatalf("GOAWAY %v %q under a permissive policy", f.ErrCode, f.DebugData())
					}
					if f.ErrCode != http2.ErrCodeEnhanceYourCalm || string(f.DebugData()) != "too_many_pings" {
						t.Errorf("GOAWAY %v %q, want ENHANCE_YOUR_CALM too_many_pings", f.ErrCode, f.DebugData())
					}
					return
				}
			}
			if tc.wantGoAway {
				t.Errorf("all %d pings acknowledged, no GOAWAY", pings)
			}
		})
	}
}

func TestDefaultsAreApplied(t *testing.T) {
	if DefaultKeepalivePolicy().MinTime < 10*time.Second || DefaultKeepalive().MaxConnectionAge == 0 {
		t.Errorf("keepalive defaults %+v %+v", DefaultKeepalivePolicy(), DefaultKeepalive())
	}
	var longest time.Duration
	for _, p := range methodTable {
		longest = max(longest, p.deadline)
	}
	if DefaultKeepalive().MaxConnectionAgeGrace < longest {
		t.Errorf("MaxConnectionAgeGrace %v is shorter than the longest deadline cap %v", DefaultKeepalive().MaxConnectionAgeGrace, longest)
	}
}
