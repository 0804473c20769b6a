// Package daemon assembles a complete recsysd: Redis (or the embedded demo
// store), profile and catalog stores, the recommend engine, the gRPC server,
// /metrics, readiness, background refreshers and the model watcher. The
// recsysd command and the demo both run it, so the demo exercises exactly
// the production wiring.
package daemon

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/attribution"
	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/coalesce"
	"github.com/recsys-dev/recsys/internal/cooccur"
	"github.com/recsys-dev/recsys/internal/demostore"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/experiment"
	"github.com/recsys-dev/recsys/internal/httpapi"
	"github.com/recsys-dev/recsys/internal/kpi"
	"github.com/recsys-dev/recsys/internal/metrics"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/modelset"
	"github.com/recsys-dev/recsys/internal/periodic"
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/pushsched"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/redisconn"
	"github.com/recsys-dev/recsys/internal/registry"
	"github.com/recsys-dev/recsys/internal/server"
	"github.com/recsys-dev/recsys/internal/tracing"
)

// Config is everything recsysd can be told.
type Config struct {
	GRPCAddr    string // e.g. ":50051"; "127.0.0.1:0" picks a free port
	MetricsAddr string // empty: no /metrics
	// MetricsTokenFile holds a bearer token /metrics then requires
	// (Authorization: Bearer <token>); empty: /metrics is open. Read once at
	// start.
	MetricsTokenFile string
	// HTTPAddr serves the API as HTTP/JSON (internal/httpapi); empty: off.
	// It is HTTPS when TLSCert is set (without asking for client
	// certificates: HTTP callers authenticate by token).
	HTTPAddr string
	// HTTPCORSOrigins may call the HTTP API from a browser ("*": any).
	HTTPCORSOrigins []string
	// RedisAddr is a server address or comma-separated cluster seeds; empty
	// starts the embedded demo store.
	RedisAddr     string
	RedisPassword string
	RedisDB       int
	// RedisCluster forces a cluster client for a single address (several
	// addresses always mean a cluster).
	RedisCluster bool
	// RedisDialTimeout, RedisTimeout (read and write) and RedisMaxRetries
	// tune the client (see redisconn.Options; zero: its defaults).
	RedisDialTimeout time.Duration
	RedisTimeout     time.Duration
	RedisMaxRetries  int
	// ProfileBudget bounds the profile load of one Recommend; past it the
	// answer is given degraded from the in-process snapshot. Default 50ms;
	// negative: no budget (only the RPC deadline).
	ProfileBudget time.Duration
	Prefix        string
	// ModelsDir, when set, is watched for models instead of the Redis
	// registry (single-server setups without a shared registry).
	ModelsDir string
	Profile   profile.Config // Prefix, Weighting are filled from this Config
	Weighting event.Weighting
	Limits    server.Limits

	// Callers. TokensFile (or Tokens, the same entries inline, for an
	// environment variable) holds "roles:name:sha256hex" lines; it is
	// re-read every TokensReload (default 30s). ClientCA enables client
	// certificates (see access.CallerFromCert). Without any of them a server
	// on a real Redis refuses to start unless InsecureNoAuth is set.
	TokensFile     string
	Tokens         string
	TokensReload   time.Duration
	InsecureNoAuth bool
	// TLS of the gRPC port: TLSCert and TLSKey (PEM files) turn it on;
	// ClientCA verifies client certificates (required with
	// RequireClientCert, else optional).
	TLSCert, TLSKey   string
	ClientCA          string
	RequireClientCert bool
	// HealthAddr, when set, serves grpc.health.v1 alone in plaintext there
	// (for probes that cannot speak TLS).
	HealthAddr string
	// Edge limits; zero values take the server's defaults.
	RateLimits       server.RateLimits
	DeadlineCaps     map[string]time.Duration
	MaxRecvMsgBytes  int
	MaxConnectionAge time.Duration

	DrainTimeout   time.Duration
	PopularRefresh time.Duration
	// TrendingRefresh is how often the trending list is re-read.
	TrendingRefresh time.Duration
	CatalogSync     time.Duration
	ModelPoll       time.Duration
	ReadyCheck      time.Duration

	Shop ShopConfig
	// Segments are the thresholds of user segments (GetProfile,
	// BatchRecommend); zero fields take profile's defaults.
	Segments profile.SegmentConfig
	// PushDedupWindow is BatchRecommend's default dedup window (default 7
	// days).
	PushDedupWindow time.Duration
	// Push configures the BatchRecommend scheduler (memory budget,
	// streams per caller, workers); zero fields: pushsched's defaults.
	Push pushsched.Config
	// Campaigns tunes the store of push campaigns' users (TTL, users per
	// group); Prefix and Now are filled in.
	Campaigns pushsched.CampaignConfig
	// Attribution tunes the answer records (window, answers kept per
	// user); Prefix and Now are filled in.
	Attribution attribution.Config
	// IndexMinItems: models with at least this many items are searched
	// through their partitioned index (0: recommend.DefaultIndexMinItems;
	// negative: every model); IndexProbe is the partitions a search probes
	// (0: a quarter). See recommend.Config.
	IndexMinItems int
	IndexProbe    int
	// MaxServingModels bounds the model versions in memory at once: the
	// current one plus the versions experiment arms name, loaded on
	// demand, the least recently used evicted beyond the bound (1: arms
	// always get the current model). 0: DefaultMaxServingModels.
	MaxServingModels int
	// Coalesce gathers concurrent Recommend and SimilarItems scorings into
	// blocks (internal/coalesce); MaxBlock 0 turns it off (the zero
	// Config, as in tests that do not set it).
	Coalesce coalesce.Config
	// TracerProvider, when set, traces RPCs, HTTP requests, Redis commands
	// and the engine's stages (internal/tracing); nil: no tracing.
	TracerProvider trace.TracerProvider
}

// ShopConfig holds the shop features of the recommender; zero fields get
// the defaults listed.
type ShopConfig struct {
	// MaxPerCategory is the default per-category cap of an answer; 0: none.
	MaxPerCategory int
	// MaxPerBrand and MaxPerSeller are the default per-brand and
	// per-seller caps of an answer; 0: none.
	MaxPerBrand, MaxPerSeller int
	// RotateAfter impressions without a click within RotateWindow rotate an
	// item down (default 3 within 24h; a negative RotateAfter turns
	// rotation off). The profile store keeps RotateAfter impressions per
	// item for RotateWindow.
	RotateAfter  int
	RotateWindow time.Duration
	// ExploreShare of the slots go to new items (default 0.1; negative:
	// off): items created less than NewItemAge ago (default 14 days) with a
	// decayed popularity below NewItemMaxPopularity (default 10).
	ExploreShare         float64
	NewItemAge           time.Duration
	NewItemMaxPopularity float64
	ArrivalsRefresh      time.Duration // default 30s
	// ColdSource is "popular" (default) or "trending": what users without
	// a personalized answer get.
	ColdSource string
	// RulesPoll is how often the blocklist and category settings are
	// checked for changes (default 250ms).
	RulesPoll time.Duration
}

func (c *Config) defaults() {
	if c.Prefix == "" {
		c.Prefix = profile.DefaultPrefix
	}
	if c.Weighting == (event.Weighting{}) {
		c.Weighting = event.DefaultWeighting()
	}
	c.Profile.Prefix = c.Prefix
	c.Profile.Weighting = c.Weighting
	if c.ProfileBudget == 0 {
		c.ProfileBudget = DefaultProfileBudget
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&c.DrainTimeout, DefaultDrainTimeout}, {&c.PopularRefresh, DefaultPopularRefresh}, {&c.TrendingRefresh, DefaultTrendingRefresh},
		{&c.CatalogSync, DefaultCatalogSync}, {&c.ModelPoll, DefaultModelPoll}, {&c.ReadyCheck, DefaultReadyCheck},
		{&c.Shop.RotateWindow, recommend.DefaultRotateWindow}, {&c.Shop.NewItemAge, recommend.DefaultNewItemAge},
		{&c.Shop.ArrivalsRefresh, DefaultArrivalsRefresh}, {&c.Shop.RulesPoll, catalog.DefaultRulesPoll},
		{&c.TokensReload, DefaultTokensReload},
	} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if c.Shop.RotateAfter == 0 {
		c.Shop.RotateAfter = DefaultRotateAfter
	}
	if c.Shop.ExploreShare == 0 {
		c.Shop.ExploreShare = DefaultExploreShare
	}
	if c.Shop.ColdSource == "" {
		c.Shop.ColdSource = DefaultColdSource
	}
	// The store keeps what rotation needs, no more.
	c.Profile.ImpressionWindow = c.Shop.RotateWindow
	c.Profile.ImpressionKeep = max(c.Shop.RotateAfter, 1)
}

// DefaultProfileBudget is the default Config.ProfileBudget: a profile load
// takes about a millisecond; 50 ms leaves room for a busy Redis and still
// answers a product page within a typical 100-200 ms deadline.
const DefaultProfileBudget = 50 * time.Millisecond

// Daemon is an assembled, listening recsysd.
type Daemon struct {
	cfg      Config
	log      *slog.Logger
	emb      *demostore.Store
	rdb      redis.UniversalClient
	store    *profile.Store
	catCache *catalog.Cache
	rules    *catalog.RulesCache
	popular  *recommend.Popular
	trending *recommend.Popular
	arrivals *recommend.Arrivals
	engine   *recommend.Engine
	models   registry.Source
	admin    server.ModelRegistry // lists, activates and pins versions
	// armModels are the engines of the model versions experiment arms
	// name, next to engine's current one.
	armModels *modelset.Set[*recommend.Engine]
	srv       *server.Server
	lis       net.Listener
	hlis      net.Listener
	auth      *access.Authenticator
	metrics   *http.Server
	mlis      net.Listener
	web       *http.Server // the HTTP/JSON API, or nil
	wlis      net.Listener
	inproc    *grpc.ClientConn // the HTTP API's connection to the server
	m         *metrics.Set
	attr      *attribution.Store
	kpi       *kpi.Store
	// collectors are the metrics /metrics exports (Collectors).
	collectors   []prometheus.Collector
	push         *pushsched.Scheduler
	pushProfiles *pushsched.Profiles
	breaker      *recommend.Breaker // on Recommend's profile loads
	xps          *experiment.Cache
}

// New builds every part and opens the listeners; Run serves.
func New(cfg Config, log *slog.Logger) (d *Daemon, err error) {
	cfg.defaults()
	if err := cfg.Weighting.Validate(); err != nil {
		return nil, err
	}
	if keep := cfg.Profile.WithDefaults().PushWindow; cfg.PushDedupWindow > keep {
		return nil, fmt.Errorf("push dedup window %v is longer than pushes are kept (%v)", cfg.PushDedupWindow, keep)
	}
	// Read before anything is opened, so that a bad file leaks nothing.
	var metricsToken [sha256.Size]byte
	if cfg.MetricsTokenFile != "" {
		if metricsToken, err = readMetricsToken(cfg.MetricsTokenFile); err != nil {
			return nil, err
		}
	}
	d = &Daemon{cfg: cfg, log: log, m: metrics.New(nil)}
	built := d // error returns set d to nil
	defer func() {
		if err != nil {
			built.Close()
		}
	}()
	addr := cfg.RedisAddr
	if addr == "" {
		if d.emb, err = demostore.Start(log); err != nil {
			return nil, err
		}
		addr = d.emb.Addr()
	}
	if d.auth, err = cfg.authenticator(d.emb != nil, log); err != nil {
		return nil, err
	}
	tlsCfg, err := serverTLS(cfg.TLSCert, cfg.TLSKey, cfg.ClientCA, cfg.RequireClientCert)
	if err != nil {
		return nil, err
	}
	if d.rdb, err = redisconn.New(redisconn.Options{
		Addr: addr, Cluster: cfg.RedisCluster, Password: cfg.RedisPassword, DB: cfg.RedisDB,
		DialTimeout: cfg.RedisDialTimeout, ReadTimeout: cfg.RedisTimeout, WriteTimeout: cfg.RedisTimeout,
		MaxRetries: cfg.RedisMaxRetries,
	}); err != nil {
		return nil, err
	}
	d.rdb.AddHook(d.m.RedisHook())
	if cfg.TracerProvider != nil {
		d.rdb.AddHook(tracing.RedisHook(cfg.TracerProvider))
	}
	catStore := catalog.NewStore(d.rdb, cfg.Prefix)
	d.catCache = catalog.NewCache(catStore, log)
	pcfg := cfg.Profile
	pcfg.Price = func(id string) float64 { // a purchase's spend: the price when it is recorded
		it, _ := d.catCache.Lookup(id)
		return it.Price
	}
	if d.store, err = profile.NewStore(d.rdb, pcfg); err != nil {
		return nil, err
	}
	d.popular = recommend.NewPopular(d.store, 1000, log)
	regional, err := profile.NewRegional(d.rdb, pcfg.Prefix, profile.RegionalConfig{Weighting: cfg.Weighting})
	if err != nil {
		return nil, err
	}
	d.rules = catalog.NewRulesCache(catStore, log)
	d.trending = recommend.NewTrending(d.store, 1000, log)
	if d.arrivals, err = recommend.NewArrivals(recommend.ArrivalsConfig{
		MaxAge: cfg.Shop.NewItemAge, MaxPopularity: cfg.Shop.NewItemMaxPopularity,
	}, d.catCache, d.store, log); err != nil {
		return nil, err
	}
	bought, err := cooccur.NewStore(d.rdb, cfg.Prefix)
	if err != nil {
		return nil, err
	}
	cold := recommend.SourcePopular
	switch cfg.Shop.ColdSource {
	case "popular":
	case "trending":
		cold = recommend.SourceTrending
	default:
		return nil, fmt.Errorf("cold source must be popular or trending, got %q", cfg.Shop.ColdSource)
	}
	if err := cfg.Push.Validate(); err != nil {
		return nil, err
	}
	coalescer, err := coalesce.New(cfg.Coalesce)
	if err != nil {
		return nil, err
	}
	d.pushProfiles = pushsched.WaitOutages(d.store, cfg.Push)
	ecfg := recommend.Config{
		Weighting:      cfg.Weighting,
		MaxPerCategory: cfg.Shop.MaxPerCategory,
		MaxPerBrand:    cfg.Shop.MaxPerBrand,
		MaxPerSeller:   cfg.Shop.MaxPerSeller,
		RotateAfter:    max(cfg.Shop.RotateAfter, 0),
		RotateWindow:   cfg.Shop.RotateWindow,
		ExploreShare:   max(cfg.Shop.ExploreShare, 0),
		Arrivals:       d.arrivals,
		Trending:       d.trending,
		Regional:       recommend.NewRegional(regional, 200, nil),
		ColdSource:     cold,
		Rules:          d.rules,
		Bought:         bought,
		// Push loads blocks of profiles without the per-request budget
		// (a block takes longer than one profile; the RPC's deadline
		// bounds it), waiting for Redis through an outage.
		PushProfiles:    d.pushProfiles,
		Segments:        cfg.Segments,
		PushDedupWindow: cfg.PushDedupWindow,
		PushWorkers:     cfg.Push.WithDefaults().Workers, // the scheduler's workers hold them
		Coalescer:       coalescer,
		IndexMinItems:   cfg.IndexMinItems,
		IndexProbe:      cfg.IndexProbe,
		Tracer:          tracer(cfg.TracerProvider),
	}
	// One breaker for the profile loads of every engine (the current
	// model's and the experiment arms'): they read the same store. It sits
	// below the budget, so it sees how loads end, not who stopped waiting.
	d.breaker = recommend.WithBreaker(d.store, recommend.BreakerConfig{Log: log})
	profiles := recommend.WithLoadBudget(d.breaker, cfg.ProfileBudget)
	if d.engine, err = recommend.New(ecfg, profiles, d.catCache, d.popular); err != nil {
		return nil, err
	}
	ccfg := cfg.Campaigns
	ccfg.Prefix = cfg.Prefix
	campaigns, err := pushsched.NewCampaigns(d.rdb, ccfg)
	if err != nil {
		return nil, err
	}
	if d.push, err = pushsched.New(cfg.Push, d.engine, campaigns); err != nil {
		return nil, err
	}
	redisRegistry, err := registry.NewRedis(d.rdb, registry.Options{Prefix: cfg.Prefix, Logger: log})
	if err != nil {
		return nil, err
	}
	admin := server.ModelRegistry(redisRegistry)
	d.models = redisRegistry
	if cfg.ModelsDir != "" {
		dir, err := registry.NewDir(cfg.ModelsDir, registry.Options{Logger: log})
		if err != nil {
			return nil, err
		}
		d.models, admin = dir, dir
	}
	d.admin = admin
	if d.kpi, err = kpi.NewStore(d.rdb, kpi.Config{Prefix: cfg.Prefix, Price: pcfg.Price}); err != nil {
		return nil, err
	}
	acfg := cfg.Attribution
	acfg.Prefix = cfg.Prefix
	outcomes := experiment.Outcomes{KPI: d.kpi, Tally: experiment.NewTally(d.rdb, cfg.Prefix)}
	if d.attr, err = attribution.NewStore(d.rdb, acfg, func(ctx context.Context, as []attribution.Answer) {
		if err := outcomes.Answers(ctx, as); err != nil {
			log.Warn("count answers", "err", err)
		}
	}); err != nil {
		return nil, err
	}
	// The engines of the versions experiment arms name: each scores alone
	// (no coalescing with the current model's requests) and pushes nothing.
	armCfg := ecfg
	armCfg.Coalescer, armCfg.PushWorkers = nil, 1
	if cfg.MaxServingModels == 0 {
		cfg.MaxServingModels = DefaultMaxServingModels
	}
	if cfg.MaxServingModels < 1 {
		return nil, fmt.Errorf("max serving models must be >= 1, got %d", cfg.MaxServingModels)
	}
	d.armModels = modelset.New(cfg.MaxServingModels-1, func(ctx context.Context, version string) (*recommend.Engine, error) {
		m, err := d.models.Load(ctx, version)
		if err != nil {
			return nil, err
		}
		e, err := recommend.New(armCfg, profiles, d.catCache, d.popular)
		if err != nil {
			return nil, err
		}
		if err := e.SetModel(m); err != nil {
			return nil, err
		}
		log.Info("serving an experiment arm's model version", "version", version, "items", m.NumItems())
		return e, nil
	})
	xstore := experiment.NewStore(d.rdb, cfg.Prefix, nil)
	d.xps = experiment.NewCache(xstore, log)
	scfg := server.Config{
		Weighting: cfg.Weighting, Segments: cfg.Segments, Limits: cfg.Limits, Auth: d.auth, TLS: tlsCfg,
		RateLimits: cfg.RateLimits, DeadlineCaps: cfg.DeadlineCaps, MaxRecvMsgBytes: cfg.MaxRecvMsgBytes,
		TracerProvider: cfg.TracerProvider, ModelPoll: cfg.ModelPoll,
	}
	if cfg.MaxConnectionAge > 0 {
		scfg.Keepalive = server.DefaultKeepalive()
		scfg.Keepalive.MaxConnectionAge = cfg.MaxConnectionAge
	}
	if d.srv, err = server.New(scfg, server.Deps{
		Logger: log, Recommender: d.engine, Serving: d.engine, Profiles: d.store, Regional: regional,
		Catalog: catStore, Rules: catStore, CatalogView: d.catCache, Search: catalog.NewSearchIndex(d.catCache, nil), Models: admin, Fallback: d.engine,
		Bought: d.engine, Pusher: d.push, Metrics: d.m, Attribution: d.attr, Outcomes: outcomes,
		Experiments: xstore, Running: d.xps, Counters: d.kpi, Tally: outcomes.Tally, ArmModels: armEngines{d.armModels},
		Campaigns: campaigns,
	}); err != nil {
		return nil, err
	}
	if d.lis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("listen on grpc address %q: %w", cfg.GRPCAddr, err)
	}
	if cfg.HealthAddr != "" {
		if d.hlis, err = net.Listen("tcp", cfg.HealthAddr); err != nil {
			return nil, fmt.Errorf("listen on health address %q: %w", cfg.HealthAddr, err)
		}
	}
	if cfg.HTTPAddr != "" {
		if err := d.listenHTTP(tlsCfg); err != nil {
			return nil, err
		}
	}
	d.collectors = append(append(append(d.srv.Collectors(), d.kpi.Collectors()...), d.push.Collectors()...),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "recsys_profile_breaker_open",
			Help: "1 while the profile-store breaker is open (Recommend answers degraded at once), else 0.",
		}, func() float64 {
			if d.breaker.Open() {
				return 1
			}
			return 0
		}), prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "recsys_profile_breaker_opened_total",
			Help: "Times the profile-store breaker opened.",
		}, func() float64 { return float64(d.breaker.Opened()) }),
		// Both kinds are always exported (pre-initialised): kind="item_page"
		// are SimilarItems and BoughtTogether answers, whose share of the
		// queue is bounded; kind="user" the others.
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "recsys_answer_records_dropped_total",
			Help:        "Answer records dropped because the attribution writer's queue (or the item pages' share of it) was full, by kind (user, item_page).",
			ConstLabels: prometheus.Labels{"kind": "user"},
		}, func() float64 { return float64(d.attr.Dropped() - d.attr.DroppedPages()) }), prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "recsys_answer_records_dropped_total",
			Help:        "Answer records dropped because the attribution writer's queue (or the item pages' share of it) was full, by kind (user, item_page).",
			ConstLabels: prometheus.Labels{"kind": "item_page"},
		}, func() float64 { return float64(d.attr.DroppedPages()) }), prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "recsys_answer_records_failed_total",
			Help: "Answer records the attribution writer could not write (Redis errors).",
		}, func() float64 { return float64(d.attr.Failed()) }),
		metrics.ServingCollector(func() metrics.ServingFigures {
			ix, co := d.engine.IndexInfo(), coalescer.Stats()
			return metrics.ServingFigures{IndexActive: ix.Active, IndexCells: ix.Cells, IndexProbe: ix.Probe, IndexBytes: ix.Bytes,
				CoalesceAlone: co.Alone, CoalesceBlocks: co.Blocks, CoalesceInBlocks: co.InBlocks, CoalesceAbandoned: co.Abandoned}
		}))
	if cfg.MetricsAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(d.collectors...)
		reg.MustRegister(collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		mux := http.NewServeMux()
		var h http.Handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		if cfg.MetricsTokenFile != "" {
			h = requireToken(metricsToken, h)
		}
		mux.Handle("/metrics", h)
		d.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		if d.mlis, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("listen on metrics address %q: %w", cfg.MetricsAddr, err)
		}
	}
	return d, nil
}

// Collectors are recsysd's own metrics (besides the Go runtime's and the
// process's), as /metrics exports them; the monitoring test checks the
// dashboard, the alert rules and the metric reference against them.
func (d *Daemon) Collectors() []prometheus.Collector { return d.collectors }

// listenHTTP opens the HTTP/JSON API's listener and builds its server.
func (d *Daemon) listenHTTP(grpcTLS *tls.Config) error {
	var err error
	if d.inproc, err = d.srv.DialInProcess(); err != nil {
		return err
	}
	h, err := httpapi.New(d.inproc, httpapi.Config{CORSOrigins: d.cfg.HTTPCORSOrigins,
		MaxBodyBytes: int64(d.cfg.MaxRecvMsgBytes), Logger: d.log})
	if err != nil {
		return err
	}
	var handler http.Handler = h
	if d.cfg.TracerProvider != nil {
		handler = tracing.HTTPHandler(d.cfg.TracerProvider, h)
	}
	d.web = &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	if grpcTLS != nil {
		c := grpcTLS.Clone()
		c.ClientAuth, c.ClientCAs = tls.NoClientCert, nil
		d.web.TLSConfig = c
	}
	if d.wlis, err = net.Listen("tcp", d.cfg.HTTPAddr); err != nil {
		return fmt.Errorf("listen on http address %q: %w", d.cfg.HTTPAddr, err)
	}
	if d.web.TLSConfig != nil {
		d.wlis = tls.NewListener(d.wlis, d.web.TLSConfig)
	}
	return nil
}

// tracer is the engine's tracer from tp; nil when tracing is off.
func tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(tracing.Scope)
}

// HTTPAddr is the HTTP/JSON API's listen address, or nil when off.
func (d *Daemon) HTTPAddr() net.Addr {
	if d.wlis == nil {
		return nil
	}
	return d.wlis.Addr()
}

// MetricsAddr is the /metrics listen address, or nil when metrics are off.
func (d *Daemon) MetricsAddr() net.Addr {
	if d.mlis == nil {
		return nil
	}
	return d.mlis.Addr()
}

// apply swaps in a model the watcher loaded.
// DefaultMaxServingModels is the default Config.MaxServingModels.
const DefaultMaxServingModels = 3

// armEngines adapts the set of arm engines to server.ArmModels.
type armEngines struct {
	set *modelset.Set[*recommend.Engine]
}

func (a armEngines) Recommender(ctx context.Context, version string) (server.Recommender, error) {
	return a.set.Get(ctx, version)
}

func (d *Daemon) apply(m *mf.Model) {
	if err := d.engine.SetModel(m); err != nil {
		d.m.ModelLoads.WithLabelValues("error").Inc()
		d.log.Error("refused a model; keeping the one being served", "version", m.Version(), "err", err)
		return
	}
	d.m.ModelLoads.WithLabelValues("ok").Inc()
	d.m.ServingModel(m.Version(), m.Info().TrainedAt, time.Now())
	d.log.Info("serving model", "version", m.Version(), "items", m.NumItems(), "factors", m.Factors())
	if w := m.Info().Weighting; w != nil && *w != d.cfg.Weighting {
		d.log.Warn("the model was trained with another event weighting than this server's flags; fold-in uses the model's, popularity and trending the flags'",
			"version", m.Version(), "model_weighting", *w, "server_weighting", d.cfg.Weighting)
	}
}

// Addr is the gRPC listen address.
func (d *Daemon) Addr() net.Addr { return d.lis.Addr() }

// Push is the BatchRecommend scheduler, whose budget accounting (InFlight,
// PeakInFlight) tests and benchmarks read.
func (d *Daemon) Push() *pushsched.Scheduler { return d.push }

// PushProfiles is the profile store of push calls (its Waits count the
// loads that waited for a Redis outage to end).
func (d *Daemon) PushProfiles() *pushsched.Profiles { return d.pushProfiles }

// HealthAddr is the plaintext health listen address, or nil when off.
func (d *Daemon) HealthAddr() net.Addr {
	if d.hlis == nil {
		return nil
	}
	return d.hlis.Addr()
}

// RedisAddr is the address of the store in use (the embedded one's, if any).
func (d *Daemon) RedisAddr() string {
	if d.emb != nil {
		return d.emb.Addr()
	}
	return d.cfg.RedisAddr
}

// Run serves until ctx ends, then reports NOT_SERVING, drains in-flight RPCs
// for up to DrainTimeout and stops. It closes the daemon's resources.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.Close()
	d.log.Info("recsysd serving", "grpc_addr", d.lis.Addr().String(), "metrics_addr", d.cfg.MetricsAddr, "http_addr", d.cfg.HTTPAddr,
		"embedded_store", d.emb != nil, "models_dir", d.cfg.ModelsDir, "authentication", d.auth != nil,
		"tls", d.cfg.TLSCert != "", "client_certificates", d.cfg.ClientCA != "")
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.srv.Serve(d.lis) })
	if d.web != nil {
		g.Go(d.srv.ServeInProcess)
		g.Go(func() error {
			if err := d.web.Serve(d.wlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http api server: %w", err)
			}
			return nil
		})
	}
	if d.hlis != nil {
		g.Go(func() error { return d.srv.ServeHealth(d.hlis) })
	}
	if d.auth != nil && d.cfg.TokensFile != "" {
		g.Go(func() error { return reloadTokens(gctx, d.cfg.TokensFile, d.cfg.TokensReload, d.auth, d.log) })
	}
	if d.metrics != nil {
		g.Go(func() error {
			if err := d.metrics.Serve(d.mlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("metrics server: %w", err)
			}
			return nil
		})
	}
	g.Go(func() error {
		return server.NewReadiness(d.srv, redisconn.Pinger{Client: d.rdb}).Run(gctx, d.cfg.ReadyCheck)
	})
	// The answer records' writer stops after the gRPC server has drained,
	// so the answers of the last requests are written (and counted) too.
	attrCtx, stopAttr := context.WithCancel(context.WithoutCancel(gctx))
	defer stopAttr()
	g.Go(func() error { return d.attr.Run(attrCtx) })
	g.Go(func() error { return d.popular.Run(gctx, d.cfg.PopularRefresh) })
	g.Go(func() error { return d.catCache.Run(gctx, d.cfg.CatalogSync) })
	g.Go(func() error { return d.rules.Run(gctx, d.cfg.Shop.RulesPoll) })
	g.Go(func() error { return d.xps.Run(gctx, experiment.DefaultPoll) })
	g.Go(func() error {
		// Renew the pins of the running arms' model versions well within
		// their lease.
		return periodic.Run(gctx, "pin experiment model versions", server.PinLease/6, d.log, func(ctx context.Context) error {
			return server.PinVersions(ctx, d.admin, time.Now(), d.xps.Running()...)
		})
	})
	g.Go(func() error { return d.engine.RunRowState(gctx, 100*time.Millisecond) })
	g.Go(func() error { return d.trending.Run(gctx, d.cfg.TrendingRefresh) })
	g.Go(func() error { return d.arrivals.Run(gctx, d.cfg.Shop.ArrivalsRefresh) })
	g.Go(func() error {
		return registry.Watch(gctx, d.models, d.apply, registry.WatchOptions{
			PollInterval: d.cfg.ModelPoll, Logger: d.log,
			OnError: func(string, error) { d.m.ModelLoads.WithLabelValues("error").Inc() },
		})
	})
	if runs, ok := d.models.(registry.RunRecorder); ok {
		g.Go(func() error { return d.watchRuns(gctx, runs) })
	}
	g.Go(func() error {
		<-gctx.Done()
		d.log.Info("shutting down: health NOT_SERVING, draining", "drain_timeout", d.cfg.DrainTimeout)
		drainCtx, cancel := context.WithTimeout(context.Background(), d.cfg.DrainTimeout)
		defer cancel()
		if d.web != nil { // first: its calls need the in-process server
			if err := d.web.Shutdown(drainCtx); err != nil {
				d.log.Warn("http api server shutdown", "err", err)
			}
		}
		d.srv.Shutdown(drainCtx)
		stopAttr()
		if d.metrics != nil {
			if err := d.metrics.Shutdown(drainCtx); err != nil {
				d.log.Warn("metrics server shutdown", "err", err)
			}
		}
		return nil
	})
	err := g.Wait()
	d.log.Info("recsysd stopped", "err", err)
	return err
}

// Close releases the Redis client and the embedded store. Run calls it.
func (d *Daemon) Close() {
	if d.lis != nil {
		_ = d.lis.Close()
	}
	if d.hlis != nil {
		_ = d.hlis.Close()
	}
	if d.mlis != nil {
		_ = d.mlis.Close()
	}
	if d.wlis != nil {
		_ = d.wlis.Close()
	}
	if d.inproc != nil {
		_ = d.inproc.Close()
	}
	if d.rdb != nil {
		if err := d.rdb.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
			d.log.Warn("close redis client", "err", err)
		}
		d.rdb = nil
	}
	if d.emb != nil {
		d.emb.Close()
		d.emb = nil
	}
}

// watchRuns exports the registry's record of the last retraining run,
// re-read every ModelPoll (a run that refuses its model flips no pointer, so
// there is nothing to subscribe to). A failed read keeps the last value: the
// readiness check and the Redis error counter report an outage.
func (d *Daemon) watchRuns(ctx context.Context, runs registry.RunRecorder) error {
	t := time.NewTicker(d.cfg.ModelPoll)
	defer t.Stop()
	for {
		if run, ok, err := runs.LastRun(ctx); err != nil {
			if ctx.Err() == nil {
				d.log.Debug("read the last retraining run", "err", err)
			}
		} else if ok {
			d.m.LastRun(run)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
