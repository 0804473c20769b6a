package server_test

import (
	"context"
	dto "github.com/prometheus/client_model/go"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/metrics"
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/redisconn"
	"github.com/recsys-dev/recsys/internal/redistest"
	"github.com/recsys-dev/recsys/internal/server"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

// TestRecommendDegradesWhenRedisIsSlowOrDown runs the server on a
// redis-server of its own, then pauses it (SIGSTOP: connections hang, as
// with an overloaded server) and kills it: Recommend keeps answering,
// marked degraded, from the model and the cached popular list; the writes
// fail with Unavailable; health says what still works; and everything is
// normal again when Redis is back, without touching the server.
func TestRecommendDegradesWhenRedisIsSlowOrDown(t *testing.T) {
	rig := startOwnRedis(t, "deg", nil)
	rs, store, pop, srv, m, conn := rig.rs, rig.store, rig.pop, rig.srv, rig.m, rig.conn
	rec := recsysv1.NewRecommendationServiceClient(conn)
	events := recsysv1.NewEventServiceClient(conn)
	hc := healthpb.NewHealthClient(conn)
	ready := server.NewReadiness(srv, store)
	ctx := context.Background()

	now := time.Now()
	if _, err := events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{
		ev("u", "a1", view, now), ev("u", "a2", view, now), ev("v", "c3", purchase, now), ev("w", "c3", view, now),
	}}); err != nil {
		t.Fatal(err)
	}
	if err := pop.Refresh(ctx); err != nil || len(pop.List()) == 0 {
		t.Fatalf("popular list: %v %v", pop.List(), err)
	}
	if !ready.Check(ctx) {
		t.Fatal("not ready with Redis up")
	}
	health := func() map[string]healthpb.HealthCheckResponse_ServingStatus {
		out := map[string]healthpb.HealthCheckResponse_ServingStatus{}
		for _, name := range append([]string{""}, server.Services...) {
			res, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
			if err != nil {
				t.Fatal(err)
			}
			out[name] = res.GetStatus()
		}
		return out
	}
	const serving, notServing = healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING
	wantHealth := func(redisUp bool) {
		t.Helper()
		got := health()
		for name, st := range got {
			want := serving
			if !redisUp && name != "" && name != recsysv1.RecommendationService_ServiceDesc.ServiceName {
				want = notServing
			}
			if st != want {
				t.Errorf("health of %q: %v, want %v (Redis up: %v)", name, st, want, redisUp)
			}
		}
	}
	wantHealth(true)

	recommendU := func(contextItem string) *recsysv1.RecommendResponse {
		t.Helper()
		req := &recsysv1.RecommendRequest{UserId: "u", Count: 4, ExcludeItemIds: []string{"c3"}}
		if contextItem != "" {
			req.Context = &recsysv1.RequestContext{ContextItemId: contextItem}
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		res, err := rec.Recommend(cctx, req)
		if err != nil {
			t.Fatalf("Recommend: %v", err)
		}
		return res
	}
	if res := recommendU(""); res.GetDegraded() || res.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED || !strings.HasPrefix(cluster(res.GetItems()), "aa") {
		t.Fatalf("Redis up: %v", res)
	}

	check := func(phase string) {
		t.Helper()
		res := recommendU("")
		if !res.GetDegraded() || res.GetSource() != recsysv1.Source_SOURCE_POPULAR || res.GetModelVersion() != "v1" || len(res.GetItems()) == 0 {
			t.Errorf("%s: Recommend %v, want a degraded popular answer", phase, res)
		}
		for _, it := range res.GetItems() {
			if it.GetItemId() == "c3" {
				t.Errorf("%s: the excluded item c3 was returned", phase)
			}
		}
		// With a context item the model knows: its neighbours.
		if res := recommendU("b1"); !res.GetDegraded() || res.GetSource() != recsysv1.Source_SOURCE_SIMILAR || cluster(res.GetItems()) != "bbbb" {
			t.Errorf("%s: Recommend with context b1: %v, want degraded b-items", phase, res)
		}
		_, err := events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{ev("u", "a3", view, time.Now())}})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("%s: RecordEvents %v, want Unavailable", phase, err)
		}
		if _, err := events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: "u"}); status.Code(err) != codes.Unavailable {
			t.Errorf("%s: GetProfile %v, want Unavailable", phase, err)
		}
		if ready.Check(ctx) {
			t.Errorf("%s: ready", phase)
		}
		wantHealth(false)
		sim, err := rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: "a0", Count: 3})
		if err != nil || !sim.GetDegraded() || cluster(sim.GetItems()) != "aaa" {
			t.Errorf("%s: SimilarItems %v %v, want degraded a-items", phase, sim, err)
		}
	}
	recovered := func(phase string) {
		t.Helper()
		eventually(t, phase+": personalized answers", func() bool {
			res := recommendU("")
			return !res.GetDegraded() && res.GetSource() == recsysv1.Source_SOURCE_PERSONALIZED
		})
		if !ready.Check(ctx) {
			t.Errorf("%s: not ready", phase)
		}
		wantHealth(true)
		if sim, err := rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: "a0", Count: 3}); err != nil || sim.GetDegraded() {
			t.Errorf("%s: SimilarItems %v %v", phase, sim, err)
		}
		if _, err := events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{ev("u", "a4", view, time.Now())}}); err != nil {
			t.Errorf("%s: RecordEvents %v", phase, err)
		}
	}

	degraded := func(cause string) float64 {
		var d dto.Metric
		if err := m.DegradedAnswers.WithLabelValues("Recommend", cause).Write(&d); err != nil {
			t.Fatal(err)
		}
		return d.GetCounter().GetValue()
	}
	rs.Pause(t)
	check("Redis paused")
	// A hanging Redis is over the profile budget.
	if b, u := degraded(metrics.CauseBudget), degraded(metrics.CauseUnavailable); b != 2 || u != 0 {
		t.Errorf("Redis paused: degraded answers by cause: budget %g, unavailable %g; want 2, 0", b, u)
	}
	rs.Resume(t)
	recovered("Redis resumed")

	rs.Stop()
	unavailableBefore := degraded(metrics.CauseUnavailable)
	check("Redis down")
	if u := degraded(metrics.CauseUnavailable) - unavailableBefore; u != 2 {
		t.Errorf("Redis down: %g degraded answers counted as unavailable, want 2", u)
	}
	// The data is gone with the process (no persistence here); the user's
	// new events make the answer personalized again.
	rs.Restart(t)
	if _, err := events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{ev("u", "a1", view, time.Now())}}); err != nil {
		t.Logf("first write after the restart: %v", err) // may still find a dead pooled connection
	}
	eventually(t, "writes after the restart", func() bool {
		_, err := events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{ev("u", "a1", view, time.Now())}})
		return err == nil
	})
	recovered("Redis restarted")
}

// ownRedis is a server on a planted model against a redis-server of its own
// (which the test may pause or kill), with short Redis timeouts, no retries
// and a 30 ms profile budget.
type ownRedis struct {
	rs    *redistest.Server
	store *profile.Store
	pop   *recommend.Popular
	srv   *server.Server
	m     *metrics.Set
	conn  *grpc.ClientConn
}

// startOwnRedis starts an ownRedis with keys under prefix; wrap, if set,
// wraps the profile store below the profile budget (where recsysd puts its
// breaker).
func startOwnRedis(t *testing.T, prefix string, wrap func(recommend.Profiles) recommend.Profiles) ownRedis {
	t.Helper()
	rs := redistest.StartServer(t, "")
	// Short timeouts and no retries keep the test fast; recsysd uses 1 s and 2.
	rdb, err := redisconn.New(redisconn.Options{Addr: rs.Addr, ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, MaxRetries: -1,
		DialTimeout: 300 * time.Millisecond, PoolTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := profile.NewStore(rdb, profile.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	catStore := catalog.NewStore(rdb, prefix)
	cache := catalog.NewCache(catStore, log)
	pop := recommend.NewPopular(store, 100, log)
	var below recommend.Profiles = store
	if wrap != nil {
		below = wrap(store)
	}
	profiles := recommend.WithLoadBudget(below, 30*time.Millisecond)
	eng, err := recommend.New(recommend.Config{}, profiles, cache, pop)
	if err != nil {
		t.Fatal(err)
	}
	eng.SetModel(plantedModel(t, "v1"))
	m := metrics.New(nil)
	srv, err := server.New(server.Config{}, server.Deps{Logger: log, Recommender: eng, Serving: eng, Profiles: store,
		Catalog: catStore, CatalogView: cache, Fallback: eng, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	return ownRedis{rs: rs, store: store, pop: pop, srv: srv, m: m, conn: serve(t, srv)}
}
