package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/recsys-dev/recsys/client"
	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/metrics"
	"github.com/recsys-dev/recsys/internal/server"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// callers of the auth tests: one token per role, and one with two roles.
var testCallers = map[string]struct {
	roles access.Roles
	token string
}{
	"pages":    {access.Pages, "tok-pages"},
	"events":   {access.Events, "tok-events"},
	"push":     {access.Push, "tok-push"},
	"operator": {access.Operator, "tok-operator"},
	"both":     {access.Pages | access.Events, "tok-both"},
}

func testTokens(t *testing.T) *access.Tokens {
	t.Helper()
	var lines []string
	for name, c := range testCallers {
		lines = append(lines, access.TokenLine(c.roles, name, c.token))
	}
	tk, err := access.ParseTokens(strings.NewReader(strings.Join(lines, "\n")), "test")
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func as(token string) grpc.CallOption {
	return grpc.PerRPCCredentials(client.BearerToken{Token: token})
}

func TestAuthorization(t *testing.T) {
	e := newEnvWith(t, envOptions{model: true, server: func(c *server.Config, _ *server.Deps) {
		c.Auth = access.NewAuthenticator(testTokens(t), false)
	}})
	ctx := context.Background()
	now := e.clock.Now()
	calls := map[string]func(...grpc.CallOption) error{
		"Recommend": func(o ...grpc.CallOption) error {
			_, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u", Count: 3}, o...)
			return err
		},
		"SimilarItems": func(o ...grpc.CallOption) error {
			_, err := e.rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: "a1", Count: 3}, o...)
			return err
		},
		"RecordEvents": func(o ...grpc.CallOption) error {
			_, err := e.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{ev("u", "a1", view, now)}}, o...)
			return err
		},
		"GetProfile": func(o ...grpc.CallOption) error {
			_, err := e.events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: "u"}, o...)
			return err
		},
		"DeleteUser": func(o ...grpc.CallOption) error {
			_, err := e.events.DeleteUser(ctx, &recsysv1.DeleteUserRequest{UserId: "nobody"}, o...)
			return err
		},
		"UpsertItems": func(o ...grpc.CallOption) error {
			_, err := e.catalog.UpsertItems(ctx, &recsysv1.UpsertItemsRequest{Items: []*recsysv1.Item{{ItemId: "a1", Available: true}}}, o...)
			return err
		},
		"GetItems": func(o ...grpc.CallOption) error {
			_, err := e.catalog.GetItems(ctx, &recsysv1.GetItemsRequest{ItemIds: []string{"a1"}}, o...)
			return err
		},
		"GetModel": func(o ...grpc.CallOption) error {
			_, err := e.models.GetModel(ctx, &recsysv1.GetModelRequest{}, o...)
			return err
		},
	}
	// allowed[method] lists the callers that may call it; everyone else gets
	// PermissionDenied.
	allowed := map[string][]string{
		"Recommend":    {"pages", "both", "operator"},
		"SimilarItems": {"pages", "both", "operator"},
		"RecordEvents": {"events", "both", "operator"},
		"GetProfile":   {"operator"},
		"DeleteUser":   {"operator"},
		"UpsertItems":  {"operator"},
		"GetItems":     {"operator"},
		"GetModel":     {"operator"},
	}
	for method, call := range calls {
		t.Run(method, func(t *testing.T) {
			for name, c := range testCallers {
				err := call(as(c.token))
				want := codes.PermissionDenied
				for _, a := range allowed[method] {
					if a == name {
						want = codes.OK
					}
				}
				if got := status.Code(err); got != want {
					t.Errorf("%s: got %v (%v), want %v", name, got, err, want)
				}
				if want == codes.PermissionDenied && !strings.Contains(status.Convert(err).Message(), `caller "`+name+`"`) {
					t.Errorf("%s: message %q does not name the caller", name, status.Convert(err).Message())
				}
			}
			if err := call(); status.Code(err) != codes.Unauthenticated {
				t.Errorf("no credentials: got %v, want Unauthenticated", err)
			}
			if err := call(as("tok-stolen")); status.Code(err) != codes.Unauthenticated {
				t.Errorf("unknown token: got %v, want Unauthenticated", err)
			}
		})
	}

	// Health and reflection stay open.
	if res, err := e.health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health without credentials: %v %v", res, err)
	}
	rs, err := grpc_reflection_v1.NewServerReflectionClient(e.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Send(&grpc_reflection_v1.ServerReflectionRequest{MessageRequest: &grpc_reflection_v1.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	if res, err := rs.Recv(); err != nil || len(res.GetListServicesResponse().GetService()) == 0 {
		t.Errorf("reflection without credentials: %v %v", res, err)
	}
	_ = rs.CloseSend()
}

func TestRateLimitPerCaller(t *testing.T) {
	var clk *clock
	m := metrics.New(nil)
	e := newEnvWith(t, envOptions{model: true, server: func(c *server.Config, d *server.Deps) {
		d.Metrics = m
		c.Auth = access.NewAuthenticator(testTokens(t), false)
		c.RateLimits = server.RateLimits{access.Pages: {PerSecond: 2, Burst: 3}, access.Events: {PerSecond: 100, Burst: 1}}
		clk = &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
		c.Now = clk.Now // the limiter's clock; the rest of the env keeps its own
	}})
	ctx := context.Background()
	recommend := func(token string) codes.Code {
		_, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u", Count: 1}, as(token))
		return status.Code(err)
	}
	var got []codes.Code
	for range 5 {
		got = append(got, recommend("tok-pages"))
	}
	want := []codes.Code{codes.OK, codes.OK, codes.OK, codes.ResourceExhausted, codes.ResourceExhausted}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pages caller, calls 1-5: got %v, want %v", got, want)
		}
	}
	// "both" holds Pages and Events: the more generous rate (events, 100/s)
	// applies, in a bucket of its own (burst 1).
	if c := recommend("tok-both"); c != codes.OK {
		t.Errorf("another caller was limited by the first one's bucket: %v", c)
	}
	if c := recommend("tok-both"); c != codes.ResourceExhausted {
		t.Errorf("both, second call at the same instant: %v, want ResourceExhausted (burst 1)", c)
	}
	// Operator has no entry: unlimited.
	for i := range 20 {
		if c := recommend("tok-operator"); c != codes.OK {
			t.Fatalf("operator call %d: %v", i, c)
		}
	}
	// Half a second refills one token at 2/s.
	clk.Advance(500 * time.Millisecond)
	if c := recommend("tok-pages"); c != codes.OK {
		t.Errorf("after 0.5 s: %v, want OK", c)
	}
	if c := recommend("tok-pages"); c != codes.ResourceExhausted {
		t.Errorf("after 0.5 s, second call: %v, want ResourceExhausted", c)
	}
	// Health is never limited.
	for range 10 {
		if _, err := e.health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("health: %v", err)
		}
	}
	_, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u", Count: 1}, as("tok-pages"))
	if msg := status.Convert(err).Message(); !strings.Contains(msg, `caller "pages" is over its limit of 2 calls/s`) {
		t.Errorf("message %q does not explain the limit", msg)
	}
	// Refusals are counted by the role whose limit applied.
	for role, want := range map[string]float64{"pages": 4, "events": 1, "operator": 0, "push": 0} {
		var d dto.Metric
		if err := m.RateLimited.WithLabelValues(role).Write(&d); err != nil {
			t.Fatal(err)
		}
		if got := d.GetCounter().GetValue(); got != want {
			t.Errorf("recsys_rate_limited_total{role=%q} = %g, want %g", role, got, want)
		}
	}
}

func TestParseRateLimits(t *testing.T) {
	got, err := server.ParseRateLimits("pages=100, events=10:50,push=0", server.DefaultRateLimits())
	if err != nil {
		t.Fatal(err)
	}
	want := server.DefaultRateLimits()
	want[access.Pages] = server.Rate{PerSecond: 100, Burst: 200}
	want[access.Events] = server.Rate{PerSecond: 10, Burst: 50}
	want[access.Push] = server.Rate{PerSecond: 0, Burst: 1}
	for r, w := range want {
		if got[r] != w {
			t.Errorf("%v: got %+v, want %+v", r, got[r], w)
		}
	}
	for _, bad := range []string{"pages", "admin=1", "pages=-1", "pages=x", "pages=1:0", "pages=NaN"} {
		if _, err := server.ParseRateLimits(bad, nil); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestExplanationsByRole: a page gets what it renders ("because you viewed
// X": the reason's kind and history item id), not the user's event types
// or score contributions; the operator gets the whole explanation.
func TestExplanationsByRole(t *testing.T) {
	e := newEnvWith(t, envOptions{model: true, server: func(c *server.Config, _ *server.Deps) {
		c.Auth = access.NewAuthenticator(testTokens(t), false)
	}})
	ctx := context.Background()
	now := e.clock.Now()
	if _, err := e.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{
		ev("u", "a1", view, now.Add(-time.Hour)), ev("u", "a2", cart, now), ev("u", "b4", view, now),
	}}, as("tok-operator")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		caller string
		full   bool
	}{{"pages", false}, {"both", false}, {"operator", true}} {
		t.Run(tc.caller, func(t *testing.T) {
			res, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u", Count: 5}, as(testCallers[tc.caller].token))
			if err != nil {
				t.Fatal(err)
			}
			if len(res.GetItems()) == 0 {
				t.Fatal("no items")
			}
			for _, it := range res.GetItems() {
				r := it.GetReason()
				if r.GetKind() != recsysv1.ReasonKind_REASON_KIND_PROFILE_ITEM || r.GetItemId() == "" {
					t.Fatalf("%s: reason %v, want a profile item named", it.GetItemId(), r)
				}
				gotFull := r.GetEventType() != recsysv1.EventType_EVENT_TYPE_UNSPECIFIED || r.GetContribution() != 0
				if gotFull != tc.full {
					t.Errorf("%s: reason %v; want event type and contribution: %v", it.GetItemId(), r, tc.full)
				}
			}
		})
	}
}
