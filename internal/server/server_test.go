package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/internal/attribution"
	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/experiment"
	"github.com/recsys-dev/recsys/internal/kpi"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/pushsched"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/redistest"
	"github.com/recsys-dev/recsys/internal/server"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// clock is a settable time source shared by every part of a test server.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one server on a real Redis with its clients.
type env struct {
	clock     *clock
	engine    *recommend.Engine
	store     *profile.Store
	cache     *catalog.Cache
	rules     *catalog.RulesCache
	trending  *recommend.Popular
	arrivals  *recommend.Arrivals
	srv       *server.Server
	campaigns *pushsched.Campaigns
	push      *pushsched.Scheduler // the server's, unless envOptions.server replaced it
	attr      *attribution.Store   // with envOptions.attribution
	kpi       *kpi.Store           // with envOptions.attribution
	xp        recsysv1.ExperimentServiceClient
	prefix    string
	conn      *grpc.ClientConn
	rec       recsysv1.RecommendationServiceClient
	events    recsysv1.EventServiceClient
	catalog   recsysv1.CatalogServiceClient
	models    recsysv1.ModelServiceClient
	health    healthpb.HealthClient
}

// plantedModel has two clusters of items: "a0".."a9" point one way, "b0".."b9"
// another, "c0".."c9" a third. A user who touches a-items should get a-items.
func plantedModel(t testing.TB, version string) *mf.Model {
	t.Helper()
	const f = 4
	var ids []string
	var factors []float32
	for ci, c := range []string{"a", "b", "c"} {
		for i := 0; i < 10; i++ {
			ids = append(ids, c+strconv.Itoa(i))
			v := make([]float32, f)
			v[ci] = 1 + float32(i)*0.01 // a slight order inside a cluster
			v[3] = 0.1
			factors = append(factors, v...)
		}
	}
	m, err := mf.New(mf.Info{
		Version:   version,
		TrainedAt: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC),
		Users:     100,
		Hyper:     mf.Hyperparameters{Factors: f, Regularization: 0.05, Alpha: 20, Iterations: 10},
		Metrics:   map[string]float64{"ndcg@10": 0.3},
	}, ids, factors)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newEnv(t *testing.T, withModel bool) *env {
	t.Helper()
	return newEnvWith(t, envOptions{model: withModel})
}

// envOptions vary a test server.
type envOptions struct {
	model bool
	// prefix, when set, shares another env's keys (a second server).
	prefix string
	clock  *clock
	// engine adjusts the engine's config (clock, rules, arrivals and
	// trending are set already).
	engine  func(*recommend.Config)
	profile func(*profile.Config)
	// rdb is the Redis to use (default: the test server's).
	rdb redis.UniversalClient
	// server adjusts the server's configuration and dependencies before it
	// is built (auth, limits, codecs).
	server func(*server.Config, *server.Deps)
	// attribution records answers and attributes events (env.attr, env.kpi).
	attribution bool
	// experiments keeps experiments in Redis, each server polling them at
	// the default pace (env.xp).
	experiments bool
}

func newEnvWith(t testing.TB, o envOptions) *env {
	t.Helper()
	rdb := o.rdb
	if rdb == nil {
		rdb = redistest.Client(t)
	}
	prefix := o.prefix
	if prefix == "" {
		prefix = redistest.Prefix(t, rdb)
	}
	clk := o.clock
	if clk == nil {
		clk = &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	var cache *catalog.Cache // set below; purchases' spend reads its prices
	pcfg := profile.Config{Prefix: prefix, Now: clk.Now, Price: func(id string) float64 {
		it, _ := cache.Lookup(id)
		return it.Price
	}}
	if o.profile != nil {
		o.profile(&pcfg)
	}
	store, err := profile.NewStore(rdb, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	catStore := catalog.NewStore(rdb, prefix)
	cache = catalog.NewCache(catStore, log)
	rules := catalog.NewRulesCache(catStore, log)
	pop := recommend.NewPopular(store, 100, log)
	trending := recommend.NewTrending(store, 100, log)
	arrivals, err := recommend.NewArrivals(recommend.ArrivalsConfig{Now: clk.Now}, cache, store, log)
	if err != nil {
		t.Fatal(err)
	}
	regional, err := profile.NewRegional(rdb, prefix, profile.RegionalConfig{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ecfg := recommend.Config{Now: clk.Now, Rules: rules, Trending: trending, Arrivals: arrivals, PushProfiles: store,
		Regional: recommend.NewRegional(regional, 100, clk.Now)}
	if o.engine != nil {
		o.engine(&ecfg)
	}
	eng, err := recommend.New(ecfg, store, cache, pop)
	if err != nil {
		t.Fatal(err)
	}
	if o.model {
		eng.SetModel(plantedModel(t, "v1"))
	}
	cfg := server.Config{Now: clk.Now}
	campaigns, err := pushsched.NewCampaigns(rdb, pushsched.CampaignConfig{Prefix: prefix, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	pusher, err := pushsched.New(pushsched.Config{StreamsPerCaller: 64}, eng, campaigns)
	if err != nil {
		t.Fatal(err)
	}
	deps := server.Deps{
		Logger: log, Recommender: eng, Serving: eng, Profiles: store, Catalog: catStore, Rules: catStore, CatalogView: cache,
		Pusher: pusher, Search: catalog.NewSearchIndex(cache, clk.Now), Campaigns: campaigns, Regional: regional,
	}
	var attr *attribution.Store
	var counters *kpi.Store
	if o.attribution {
		price := func(id string) float64 { it, _ := cache.Lookup(id); return it.Price }
		if counters, err = kpi.NewStore(rdb, kpi.Config{Prefix: prefix, Now: clk.Now, Price: price}); err != nil {
			t.Fatal(err)
		}
		both := experiment.Outcomes{KPI: counters, Tally: experiment.NewTally(rdb, prefix)}
		if attr, err = attribution.NewStore(rdb, attribution.Config{Prefix: prefix, Now: clk.Now},
			func(ctx context.Context, as []attribution.Answer) {
				if err := both.Answers(ctx, as); err != nil {
					t.Errorf("count answers: %v", err)
				}
			}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- attr.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("attribution writer: %v", err)
			}
		})
		deps.Attribution, deps.Outcomes, deps.Counters, deps.Tally = attr, both, counters, both.Tally
	}
	if o.experiments {
		xs := experiment.NewStore(rdb, prefix, clk.Now)
		running := experiment.NewCache(xs, log)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- running.Run(ctx, 0) }()
		t.Cleanup(func() { cancel(); <-done })
		deps.Experiments, deps.Running = xs, running
	}
	if o.server != nil {
		o.server(&cfg, &deps)
	}
	srv, err := server.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetServing(true)
	conn := serve(t, srv)
	return &env{
		clock: clk, engine: eng, store: store, cache: cache, rules: rules, trending: trending, arrivals: arrivals,
		srv: srv, prefix: prefix, conn: conn, attr: attr, kpi: counters, campaigns: campaigns, push: pusher,
		rec:     recsysv1.NewRecommendationServiceClient(conn),
		events:  recsysv1.NewEventServiceClient(conn),
		catalog: recsysv1.NewCatalogServiceClient(conn),
		models:  recsysv1.NewModelServiceClient(conn),
		health:  healthpb.NewHealthClient(conn),
		xp:      recsysv1.NewExperimentServiceClient(conn),
	}
}

// serve runs srv on an in-memory listener and returns a client connection
// that goes through the real interceptor chain.
func serve(t testing.TB, srv *server.Server) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		srv.GRPC().Stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return conn
}

func (e *env) record(t *testing.T, evs ...*recsysv1.Event) *recsysv1.RecordEventsResponse {
	t.Helper()
	res, err := e.events.RecordEvents(context.Background(), &recsysv1.RecordEventsRequest{Events: evs})
	if err != nil {
		t.Fatalf("RecordEvents: %v", err)
	}
	return res
}

// eventSeq numbers events; parallel tests call ev.
var eventSeq atomic.Int64

func ev(user, item string, typ recsysv1.EventType, at time.Time) *recsysv1.Event {
	return &recsysv1.Event{
		EventId:   "e" + strconv.FormatInt(eventSeq.Add(1), 10),
		UserId:    user,
		ItemId:    item,
		Type:      typ,
		Timestamp: timestamppb.New(at),
	}
}

func ids(items []*recsysv1.ScoredItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.GetItemId()
	}
	return out
}

func cluster(items []*recsysv1.ScoredItem) string {
	var b strings.Builder
	for _, it := range items {
		b.WriteByte(it.GetItemId()[0])
	}
	return b.String()
}

const (
	view     = recsysv1.EventType_EVENT_TYPE_VIEW
	cart     = recsysv1.EventType_EVENT_TYPE_ADD_TO_CART
	purchase = recsysv1.EventType_EVENT_TYPE_PURCHASE
)

func TestProfileFromEvents(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	now := e.clock.Now()
	day := 24 * time.Hour
	e.record(t,
		ev("u1", "a1", view, now.Add(-30*day)), // one half-life ago: weight 0.5
		ev("u1", "a1", view, now),              // weight 1
		ev("u1", "b2", cart, now),              // weight 3
		ev("u1", "c3", purchase, now.Add(-60*day)),
	)
	if _, err := e.catalog.UpsertItems(ctx, &recsysv1.UpsertItemsRequest{Items: []*recsysv1.Item{
		{ItemId: "a1", Category: "shoes", Available: true},
		{ItemId: "b2", Category: "hats", Available: true},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := e.cache.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := e.events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	p := res.GetProfile()
	got := map[string]float64{}
	counts := map[string]int32{}
	for _, it := range p.GetItems() {
		got[it.GetItemId()] = it.GetWeight()
		counts[it.GetItemId()] = it.GetEventCount()
	}
	want := map[string]float64{"a1": 1.5, "b2": 3, "c3": 5 * 0.25}
	for id, w := range want {
		if d := got[id] - w; d > 1e-6 || d < -1e-6 {
			t.Errorf("weight of %s = %v, want %v", id, got[id], w)
		}
	}
	if len(got) != len(want) || counts["a1"] != 2 {
		t.Errorf("items %v counts %v, want %v and a1 counted twice", got, counts, want)
	}
	if gotIDs := []string{p.GetItems()[0].GetItemId(), p.GetItems()[1].GetItemId()}; !slices.Equal(gotIDs, []string{"b2", "a1"}) {
		t.Errorf("order %v, want heaviest first [b2 a1 …]", gotIDs)
	}
	if p.GetPurchaseCount() != 1 || !slices.Equal(p.GetPurchasedItemIds(), []string{"c3"}) {
		t.Errorf("purchases: count %d ids %v, want 1 [c3]", p.GetPurchaseCount(), p.GetPurchasedItemIds())
	}
	if !p.GetFirstSeen().AsTime().Equal(now.Add(-60*day)) || !p.GetLastSeen().AsTime().Equal(now) {
		t.Errorf("first/last seen %v %v", p.GetFirstSeen().AsTime(), p.GetLastSeen().AsTime())
	}
	aff := p.GetCategoryAffinities()
	if len(aff) != 2 || aff[0].GetCategory() != "hats" || aff[1].GetCategory() != "shoes" ||
		abs(aff[0].GetAffinity()-3/4.5) > 1e-6 {
		t.Errorf("category affinities %v, want hats 0.667, shoes 0.333", aff)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestRetriedEventCountedOnce(t *testing.T) {
	e := newEnv(t, true)
	now := e.clock.Now()
	batch := []*recsysv1.Event{ev("u1", "a1", view, now), ev("u1", "a2", purchase, now)}
	if res := e.record(t, batch...); res.GetAccepted() != 2 || res.GetDuplicates() != 0 {
		t.Fatalf("first: %v", res)
	}
	if res := e.record(t, batch...); res.GetAccepted() != 0 || res.GetDuplicates() != 2 {
		t.Fatalf("retry: got %v, want 0 accepted 2 duplicates", res)
	}
	p, err := e.events.GetProfile(context.Background(), &recsysv1.GetProfileRequest{UserId: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.GetProfile().GetItems()); n != 2 || p.GetProfile().GetPurchaseCount() != 1 {
		t.Errorf("after retry: %d items, %d purchases; want 2 and 1", n, p.GetProfile().GetPurchaseCount())
	}
	for _, it := range p.GetProfile().GetItems() {
		if it.GetEventCount() != 1 {
			t.Errorf("%s counted %d times", it.GetItemId(), it.GetEventCount())
		}
	}
}

func TestNewViewChangesNextRecommendation(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	now := e.clock.Now()
	e.record(t, ev("u1", "a1", view, now))
	req := &recsysv1.RecommendRequest{UserId: "u1", Count: 5}
	first, err := e.rec.Recommend(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if first.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED || cluster(first.GetItems()) != "aaaaa" {
		t.Fatalf("first answer %v (%v), want five a-items, personalized", ids(first.GetItems()), first.GetSource())
	}
	if first.GetModelVersion() != "v1" || first.GetRecommendationId() == "" {
		t.Errorf("model_version %q recommendation_id %q", first.GetModelVersion(), first.GetRecommendationId())
	}
	// The shopper now looks at b-items; the very next answer must follow.
	e.record(t, ev("u1", "b1", view, now), ev("u1", "b2", view, now), ev("u1", "b3", cart, now))
	second, err := e.rec.Recommend(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if c := cluster(second.GetItems()); c[0] != 'b' {
		t.Errorf("after viewing b-items got %v, want b-items first", ids(second.GetItems()))
	}
	for _, id := range ids(second.GetItems()) {
		if id == "a1" || id == "b1" || id == "b2" || id == "b3" {
			t.Errorf("recommended %s from the user's own history", id)
		}
	}
}

func TestRecommendExclusions(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	now := e.clock.Now()
	e.record(t, ev("u1", "a9", purchase, now), ev("u1", "a8", view, now))
	if _, err := e.catalog.UpsertItems(ctx, &recsysv1.UpsertItemsRequest{Items: []*recsysv1.Item{
		{ItemId: "a7", Available: false}, {ItemId: "a6", Available: true},
	}}); err != nil {
		t.Fatal(err)
	}
	if err := e.cache.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u1", Count: 30, ExcludeItemIds: []string{"a5"}})
	if err != nil {
		t.Fatal(err)
	}
	got := ids(res.GetItems())
	for _, banned := range []string{"a9" /* purchased */, "a8" /* seen */, "a7" /* unavailable */, "a5" /* excluded */} {
		if slices.Contains(got, banned) {
			t.Errorf("answer %v contains %s", got, banned)
		}
	}
	if len(got) != 26 {
		t.Errorf("got %d items, want the 26 allowed ones", len(got))
	}
	if got[0] != "a6" {
		t.Errorf("best item %s, want a6 (the best allowed a-item)", got[0])
	}
}

func TestContextItemCountsForThisAnswerOnly(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	res, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{
		UserId: "anonymous", Count: 3, Context: &recsysv1.RequestContext{ContextItemId: "c4", Placement: "pdp"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED || cluster(res.GetItems()) != "ccc" || slices.Contains(ids(res.GetItems()), "c4") {
		t.Errorf("got %v (%v), want three c-items other than c4", ids(res.GetItems()), res.GetSource())
	}
	p, err := e.events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: "anonymous"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.GetProfile().GetItems()) != 0 {
		t.Errorf("context item was stored: %v", p.GetProfile().GetItems())
	}
}

func TestColdUserGetsPopularItems(t *testing.T) {
	for _, withModel := range []bool{true, false} {
		t.Run("model="+strconv.FormatBool(withModel), func(t *testing.T) {
			e := newEnv(t, withModel)
			ctx := context.Background()
			now := e.clock.Now()
			// c2 is the most popular, then b5, then a3.
			e.record(t,
				ev("x", "c2", purchase, now), ev("y", "c2", purchase, now), ev("z", "b5", purchase, now),
				ev("x", "b5", view, now), ev("y", "a3", view, now))
			if err := e.engine.Popular().Refresh(ctx); err != nil {
				t.Fatal(err)
			}
			res, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "new-user", Count: 2})
			if err != nil {
				t.Fatal(err)
			}
			if res.GetSource() != recsysv1.Source_SOURCE_POPULAR || !slices.Equal(ids(res.GetItems()), []string{"c2", "b5"}) {
				t.Errorf("got %v (%v), want [c2 b5] from popular", ids(res.GetItems()), res.GetSource())
			}
			// A user whose history is all unknown to the model is cold too.
			e.record(t, ev("u2", "brand-new-item", view, now))
			res, err = e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u2", Count: 1})
			if err != nil {
				t.Fatal(err)
			}
			if res.GetSource() != recsysv1.Source_SOURCE_POPULAR || !slices.Equal(ids(res.GetItems()), []string{"c2"}) {
				t.Errorf("history unknown to the model: got %v (%v), want [c2] popular", ids(res.GetItems()), res.GetSource())
			}
		})
	}
}

func TestSimilarItems(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	res, err := e.rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: "b0", Count: 4, ExcludeItemIds: []string{"b9"}})
	if err != nil {
		t.Fatal(err)
	}
	got := ids(res.GetItems())
	if res.GetSource() != recsysv1.Source_SOURCE_SIMILAR || cluster(res.GetItems()) != "bbbb" || slices.Contains(got, "b0") || slices.Contains(got, "b9") {
		t.Errorf("got %v (%v), want four b-items other than b0 and b9", got, res.GetSource())
	}
	for _, it := range res.GetItems() {
		if it.GetScore() < 0.9 || it.GetScore() > 1.0001 {
			t.Errorf("cosine of %s = %v, want within [0.9, 1]", it.GetItemId(), it.GetScore())
		}
	}
	res, err = e.rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: "unknown", Count: 4})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetSource() != recsysv1.Source_SOURCE_POPULAR {
		t.Errorf("unknown item: source %v, want popular fallback", res.GetSource())
	}
}

func TestInvalidRequests(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	long := strings.Repeat("x", 300)
	now := e.clock.Now()
	okEvent := func() *recsysv1.Event { return ev("u", "i", view, now) }
	with := func(f func(*recsysv1.Event)) []*recsysv1.Event { x := okEvent(); f(x); return []*recsysv1.Event{x} }
	many := make([]*recsysv1.Event, 1001)
	for i := range many {
		many[i] = okEvent()
	}
	for _, tc := range []struct {
		name  string
		call  func() error
		field string
	}{
		{"recommend empty user", func() error {
			_, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{Count: 5})
			return err
		}, "user_id"},
		{"recommend count 0", func() error {
			_, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u"})
			return err
		}, "count"},
		{"recommend count 501", func() error {
			_, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u", Count: 501})
			return err
		}, "count"},
		{"recommend long user id", func() error {
			_, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: long, Count: 5})
			return err
		}, "user_id"},
		{"recommend empty excluded id", func() error {
			_, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u", Count: 5, ExcludeItemIds: []string{"ok", ""}})
			return err
		}, "exclude_item_ids[1]"},
		{"similar empty item", func() error {
			_, err := e.rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{Count: 5})
			return err
		}, "item_id"},
		{"similar negative count", func() error {
			_, err := e.rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: "a1", Count: -1})
			return err
		}, "count"},
		{"events empty batch", func() error {
			_, err := e.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{})
			return err
		}, "events"},
		{"events oversized batch", func() error {
			_, err := e.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: many})
			return err
		}, "events"},
		{"event without id", func() error {
			_, err := e.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: with(func(x *recsysv1.Event) { x.EventId = "" })})
			return err
		}, "events[0].event_id"},
		{"event without user", func() error {
			_, err := e.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: with(func(x *recsysv1.Event) { x.UserId = "" })})
			return err
		}, "events[0].user_id"},
		{"event without item", func() error {
			_, err := e.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: with(func(x *recsysv1.Event) { x.ItemId = "" })})
			return err
		}, "events[0].item_id"},
		{"event unspecified type", func() error {
			_, err := e.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: with(func(x *recsysv1.Event) { x.Type = 0 })})
			return err
		}, "events[0].type"},
		{"event unknown type", func() error {
			_, err := e.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: with(func(x *recsysv1.Event) { x.Type = 99 })})
			return err
		}, "events[0].type"},
		{"event negative quantity", func() error {
			_, err := e.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: with(func(x *recsysv1.Event) { x.Quantity = -1 })})
			return err
		}, "events[0].quantity"},
		{"custom event without weight", func() error {
			_, err := e.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: with(func(x *recsysv1.Event) { x.Type = recsysv1.EventType_EVENT_TYPE_CUSTOM })})
			return err
		}, "events[0].weight"},
		{"event in the future", func() error {
			_, err := e.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: with(func(x *recsysv1.Event) { x.Timestamp = timestamppb.New(now.Add(time.Hour)) })})
			return err
		}, "events[0].timestamp"},
		{"profile empty user", func() error {
			_, err := e.events.GetProfile(ctx, &recsysv1.GetProfileRequest{})
			return err
		}, "user_id"},
		{"delete empty user", func() error {
			_, err := e.events.DeleteUser(ctx, &recsysv1.DeleteUserRequest{})
			return err
		}, "user_id"},
		{"upsert negative price", func() error {
			_, err := e.catalog.UpsertItems(ctx, &recsysv1.UpsertItemsRequest{Items: []*recsysv1.Item{{ItemId: "x", Price: -1}}})
			return err
		}, "items[0].price"},
		{"upsert empty id", func() error {
			_, err := e.catalog.UpsertItems(ctx, &recsysv1.UpsertItemsRequest{Items: []*recsysv1.Item{{ItemId: "a"}, {}}})
			return err
		}, "items[1].item_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			st, _ := status.FromError(err)
			if st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), tc.field+":") {
				t.Errorf("got %v %q, want InvalidArgument naming %q", st.Code(), st.Message(), tc.field)
			}
		})
	}
}

func TestDeleteUserLeavesNoKey(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	now := e.clock.Now()
	e.record(t, ev("gone", "a1", view, now), ev("gone", "a2", purchase, now), ev("stays", "a1", view, now))
	res, err := e.events.DeleteUser(ctx, &recsysv1.DeleteUserRequest{UserId: "gone"})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetDeletedKeys() == 0 {
		t.Error("DeleteUser removed no key")
	}
	rdb := redistest.Client(t)
	keys, err := redistest.Keys(ctx, rdb, e.prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, "{gone}") {
			t.Errorf("key %q survived DeleteUser", k)
		}
	}
	p, err := e.events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: "stays"})
	if err != nil || len(p.GetProfile().GetItems()) != 1 {
		t.Errorf("the other user's profile was touched: %v %v", p, err)
	}
}

func TestGetModel(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	res, err := e.models.GetModel(ctx, &recsysv1.GetModelRequest{})
	if err != nil || res.GetModel() != nil {
		t.Fatalf("without a model: %v %v, want empty", res, err)
	}
	e.engine.SetModel(plantedModel(t, "v7"))
	res, err = e.models.GetModel(ctx, &recsysv1.GetModelRequest{})
	if err != nil {
		t.Fatal(err)
	}
	m := res.GetModel()
	if m.GetVersion() != "v7" || m.GetItems() != 30 || m.GetFactors() != 4 || m.GetUsers() != 100 ||
		m.GetMetrics()["ndcg@10"] != 0.3 || m.GetHyperparameters()["alpha"] != 20 || !m.GetCurrent() {
		t.Errorf("got %v", m)
	}
}

// panicking is a recommender with a bug.
type panicking struct{}

func (panicking) Recommend(context.Context, recommend.Request) (recommend.Result, error) {
	var m map[string]int
	m["boom"]++ // nil map write
	return recommend.Result{}, nil
}

func (panicking) Similar(context.Context, recommend.SimilarRequest) (recommend.Result, error) {
	return recommend.Result{}, errors.New("secret cause that must not leak")
}

func (panicking) Rank(context.Context, recommend.RankRequest) (recommend.RankResult, error) {
	return recommend.RankResult{}, errors.New("secret cause that must not leak")
}

func TestPanicsAndUnknownErrorsBecomeInternal(t *testing.T) {
	e := newEnv(t, true)
	srv, err := server.New(server.Config{}, server.Deps{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Recommender: panicking{}, Serving: e.engine,
		Profiles: e.store, Catalog: catalog.NewStore(redistest.Client(t), e.prefix),
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := recsysv1.NewRecommendationServiceClient(serve(t, srv))
	_, err = rec.Recommend(context.Background(), &recsysv1.RecommendRequest{UserId: "u", Count: 1})
	if st, _ := status.FromError(err); st.Code() != codes.Internal {
		t.Errorf("panic: got %v, want Internal", err)
	}
	_, err = rec.SimilarItems(context.Background(), &recsysv1.SimilarItemsRequest{ItemId: "a1", Count: 1})
	if st, _ := status.FromError(err); st.Code() != codes.Internal || strings.Contains(st.Message(), "secret") {
		t.Errorf("unknown error: got %v, want Internal without the cause", err)
	}
	// The server still answers after the panic.
	if _, err := rec.Recommend(context.Background(), &recsysv1.RecommendRequest{UserId: "", Count: 1}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("after panic: %v", err)
	}
}

func TestRedisDownIsUnavailable(t *testing.T) {
	e := newEnv(t, true)
	// A store on a port where nothing listens.
	dead := deadRedis(t)
	store, err := profile.NewStore(dead, profile.Config{Prefix: "x"})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(server.Config{}, server.Deps{
		Logger: log, Recommender: e.engine, Serving: e.engine, Profiles: store, Catalog: catalog.NewStore(dead, "x"),
	})
	if err != nil {
		t.Fatal(err)
	}
	events := recsysv1.NewEventServiceClient(serve(t, srv))
	_, err = events.RecordEvents(context.Background(), &recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{ev("u", "a1", view, time.Now())}})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("RecordEvents with Redis down: %v, want Unavailable", err)
	}
}

// deadRedis returns a client of a port where nothing listens.
func deadRedis(t *testing.T) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: redistest.FreeAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestHealthFlipsToServingOnlyWhenRedisAnswers(t *testing.T) {
	addr := redistest.FreeAddr(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := profile.NewStore(rdb, profile.Config{Prefix: "health"})
	if err != nil {
		t.Fatal(err)
	}
	pop := recommend.NewPopular(store, 10, log)
	eng, err := recommend.New(recommend.Config{}, store, nil, pop)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{}, server.Deps{Logger: log, Recommender: eng, Serving: eng, Profiles: store, Catalog: catalog.NewStore(rdb, "health")})
	if err != nil {
		t.Fatal(err)
	}
	hc := healthpb.NewHealthClient(serve(t, srv))
	ready := server.NewReadiness(srv, store)
	ctx := context.Background()
	check := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for _, name := range append([]string{""}, server.Services...) {
			res, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
			if err != nil || res.GetStatus() != want {
				t.Errorf("health of %q: %v %v, want %v", name, res.GetStatus(), err, want)
			}
		}
	}
	check(healthpb.HealthCheckResponse_NOT_SERVING) // before any check
	live := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		res, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: server.LivenessService})
		if err != nil || res.GetStatus() != want {
			t.Errorf("liveness: %v %v, want %v", res.GetStatus(), err, want)
		}
	}
	live(healthpb.HealthCheckResponse_SERVING)
	if ready.Check(ctx) {
		t.Fatal("ready with no Redis")
	}
	check(healthpb.HealthCheckResponse_NOT_SERVING)

	redis := redistest.StartServer(t, addr)
	if !ready.Check(ctx) {
		t.Fatal("not ready with Redis up")
	}
	check(healthpb.HealthCheckResponse_SERVING)

	redis.Stop()
	if ready.Check(ctx) {
		t.Fatal("still ready after Redis stopped")
	}
	check(healthpb.HealthCheckResponse_NOT_SERVING)
	live(healthpb.HealthCheckResponse_SERVING) // a Redis outage must not restart the server

	// Shutdown reports NOT_SERVING even while Redis answers.
	redistest.StartServer(t, addr)
	ready.Check(ctx)
	check(healthpb.HealthCheckResponse_SERVING)
	shutdownCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	go srv.Shutdown(shutdownCtx)
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || res.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING {
			break // NOT_SERVING reported, or the server already stopped serving
		}
		if time.Now().After(deadline) {
			t.Fatal("health still SERVING after Shutdown")
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}
