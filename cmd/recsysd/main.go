// Command recsysd is the recommendation server: gRPC API on --grpc-addr,
// Prometheus metrics on --metrics-addr, profiles in Redis (--redis-addr; an
// embedded in-process store when empty, for the demo only), and models from
// the registry, hot-swapped as they are published.
//
// Every flag can also be set by an environment variable: --redis-addr by
// RECSYS_REDIS_ADDR, and so on.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/cli"
	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/pushsched"
	"github.com/recsys-dev/recsys/internal/redisconn"
	"github.com/recsys-dev/recsys/internal/server"
	"github.com/recsys-dev/recsys/internal/tracing"
)

func main() { os.Exit(cli.Exit("recsysd", cli.Main(run), os.Stderr)) }

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, logOpts, err := parse(args, getenv, stderr)
	if errors.Is(err, errVersion) {
		_, err := fmt.Fprintln(stdout, cli.Version("recsysd"))
		return err
	}
	if err != nil {
		return err
	}
	log, err := cli.NewLogger(stderr, logOpts.level, logOpts.format)
	if err != nil {
		return err
	}
	redis.SetLogger(redisconn.NewLogger(log, 10*time.Second)) // go-redis' one process-wide logger

	tp, err := tracing.FromEnv(ctx, getenv, "recsysd")
	if err != nil {
		return err
	}
	if tp != nil {
		log.Info("tracing on: exporting spans over OTLP (OTEL_* environment variables)")
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tp.Shutdown(sctx); err != nil {
				log.Warn("flush traces", "err", err)
			}
		}()
	}
	cfg.TracerProvider = tp.TracerProvider()
	d, err := daemon.New(cfg, log)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

type logOptions struct{ level, format string }

// errVersion is parse's answer to --version.
var errVersion = errors.New("--version")

// usage is `recsysd --help`: what it is, every flag, the environment and
// the exit codes.
func usage(fs *flag.FlagSet, w io.Writer) func() {
	return func() {
		fmt.Fprint(w, `usage: recsysd [flags]

The recommendation server: the gRPC API (recsys.v1) on --grpc-addr, optionally the same API as
HTTP/JSON on --http-addr, Prometheus metrics on --metrics-addr; profiles in Redis (--redis-addr;
without it an embedded in-process store, for the demo only), models from the registry, hot-swapped
as they are published. It listens on 127.0.0.1 unless told otherwise (the image and the Kubernetes
manifests set :50051 and :9090).

flags:
`)
		fs.PrintDefaults()
		fmt.Fprintln(w)
		env := flag.NewFlagSet("", flag.ContinueOnError)
		fs.VisitAll(func(f *flag.Flag) {
			if f.Name != "version" {
				env.Var(f.Value, f.Name, f.Usage)
			}
		})
		fmt.Fprint(w, cli.EnvHelp(env, "RECSYS"))
		fmt.Fprint(w, `
tracing (OpenTelemetry; off unless an OTLP endpoint is set):
  OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT   the collector; setting one turns tracing on
  OTEL_EXPORTER_OTLP_PROTOCOL                                       http/protobuf (default) or grpc
  OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES                       default service name recsysd
  OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG                      sampling (default parentbased_always_on)
  OTEL_SDK_DISABLED=true, OTEL_TRACES_EXPORTER=none                 off even with an endpoint

`)
		fmt.Fprint(w, cli.ExitCodesHelp)
	}
}

// options are recsysd's settings: the daemon's Config plus what main parses
// into it. defaultOptions holds every default, each named once: in
// daemon.NewConfig and the Default* constants of the packages it configures.
type options struct {
	cfg                                               daemon.Config
	log                                               logOptions
	version                                           bool
	corsOrigins, rateLimits, deadlineCaps, pushCounts string
	indexMin                                          int
	coalesceMiB, pushMiB                              int64
}

// Defaults of the settings only main has.
const (
	defaultLogLevel  = "info"
	defaultLogFormat = "json"
)

func defaultOptions() options {
	c := daemon.NewConfig()
	return options{
		cfg:         c,
		log:         logOptions{level: defaultLogLevel, format: defaultLogFormat},
		indexMin:    c.IndexMinItems,
		coalesceMiB: c.Coalesce.BlockBytes >> 20,
		pushMiB:     c.Push.MemoryBudget >> 20,
		pushCounts:  c.Push.Counts.String(),
	}
}

// newFlagSet registers recsysd's flags on a new FlagSet, each with its
// value in o as default.
func newFlagSet(o *options, stderr io.Writer) *flag.FlagSet {
	c, lo, w := &o.cfg, &o.log, &o.cfg.Weighting
	fs := flag.NewFlagSet("recsysd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = usage(fs, stderr)
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", c.GRPCAddr, "gRPC listen address (:50051: every interface)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", c.MetricsAddr, "HTTP address of /metrics (empty: off)")
	fs.StringVar(&c.MetricsTokenFile, "metrics-token-file", c.MetricsTokenFile, "file holding a bearer token /metrics then requires (empty: /metrics open)")
	fs.StringVar(&c.HTTPAddr, "http-addr", c.HTTPAddr, "serve the API as HTTP/JSON here, POST /recsys.v1.<Service>/<Method> (empty: off)")
	fs.StringVar(&o.corsOrigins, "http-cors-origins", o.corsOrigins, "comma-separated origins allowed to call the HTTP API from a browser (*: any)")
	fs.StringVar(&c.RedisAddr, "redis-addr", c.RedisAddr, "Redis address, or comma-separated cluster seeds; empty: embedded demo store")
	fs.BoolVar(&c.RedisCluster, "redis-cluster", c.RedisCluster, "treat a single --redis-addr as a Redis Cluster seed")
	fs.StringVar(&c.RedisPassword, "redis-password", c.RedisPassword, "Redis password")
	fs.IntVar(&c.RedisDB, "redis-db", c.RedisDB, "Redis database number (not for clusters)")
	fs.DurationVar(&c.RedisDialTimeout, "redis-dial-timeout", c.RedisDialTimeout, "Redis connect timeout")
	fs.DurationVar(&c.RedisTimeout, "redis-timeout", c.RedisTimeout, "Redis read/write timeout of one command")
	fs.IntVar(&c.RedisMaxRetries, "redis-max-retries", c.RedisMaxRetries, "retries of a Redis command after a network error (-1: none)")
	fs.DurationVar(&c.ProfileBudget, "profile-budget", c.ProfileBudget,
		"longest wait for a user's profile in Recommend before answering degraded (negative: until the RPC deadline)")
	fs.StringVar(&c.TokensFile, "tokens-file", c.TokensFile, "callers' tokens, one 'roles:name:sha256hex' per line (see recsysctl token new)")
	fs.StringVar(&c.Tokens, "tokens", c.Tokens, "callers' tokens inline, comma-separated 'roles:name:sha256hex' (instead of --tokens-file)")
	fs.DurationVar(&c.TokensReload, "tokens-reload", c.TokensReload, "how often --tokens-file is re-read")
	fs.BoolVar(&c.InsecureNoAuth, "insecure-no-auth", c.InsecureNoAuth, "serve without authentication (every caller may do everything)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "server certificate (PEM); with --tls-key turns TLS on")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "server private key (PEM)")
	fs.StringVar(&c.ClientCA, "client-ca", c.ClientCA, "CA (PEM) that signs client certificates; CN = caller name, O=recsys:<role> = role")
	fs.BoolVar(&c.RequireClientCert, "require-client-cert", c.RequireClientCert, "refuse TLS connections without a client certificate")
	fs.StringVar(&c.HealthAddr, "health-addr", c.HealthAddr, "also serve plaintext grpc.health.v1 alone here (for probes when the main port is TLS)")
	fs.StringVar(&o.rateLimits, "rate-limits", o.rateLimits, "per-caller rate limits by role, 'role=rate[:burst],...' (0: unlimited); "+
		"default pages=5000:10000,events=2000:4000,push=20:40,operator=500:1000")
	fs.StringVar(&o.deadlineCaps, "deadline-caps", o.deadlineCaps, "per-method deadline caps overriding the built-in ones, 'Method=duration,...'")
	fs.IntVar(&c.MaxRecvMsgBytes, "max-recv-msg-bytes", c.MaxRecvMsgBytes, "largest request message")
	fs.DurationVar(&c.MaxConnectionAge, "max-connection-age", c.MaxConnectionAge, "clients reconnect after this (spreads load over new replicas)")
	fs.StringVar(&c.Prefix, "prefix", c.Prefix, "prefix of every Redis key")
	fs.StringVar(&c.ModelsDir, "models-dir", c.ModelsDir, "serve models from this directory instead of the Redis registry")
	fs.StringVar(&lo.level, "log-level", lo.level, "debug, info, warn or error")
	fs.StringVar(&lo.format, "log-format", lo.format, "json or text")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", c.DrainTimeout, "how long SIGTERM waits for in-flight RPCs")
	fs.IntVar(&c.Profile.HistoryCap, "history-cap", c.Profile.HistoryCap, "recent events kept per user")
	fs.IntVar(&c.Profile.PurchasedCap, "purchased-cap", c.Profile.PurchasedCap, "purchased items kept per user")
	fs.DurationVar(&c.Profile.UserTTL, "user-ttl", c.Profile.UserTTL, "TTL of a user's keys, refreshed on activity")
	fs.DurationVar(&w.HalfLife, "half-life", w.HalfLife, "event weight half-life")
	fs.Float64Var(&w.View, "weight-view", w.View, "weight of a view")
	fs.Float64Var(&w.AddToCart, "weight-cart", w.AddToCart, "weight of an add-to-cart")
	fs.Float64Var(&w.Purchase, "weight-purchase", w.Purchase, "weight of a purchase")
	fs.Float64Var(&w.Wishlist, "weight-wishlist", w.Wishlist, "weight of an add-to-wishlist")
	fs.Float64Var(&w.Rating, "weight-rating", w.Rating, "weight of a 5-star rating (a rating r > 3 weighs it × (r-3)/2)")
	fs.DurationVar(&c.Profile.NotInterestedTTL, "not-interested-ttl", c.Profile.NotInterestedTTL, "how long a NOT_INTERESTED dismissal (or a rating <= 2) holds")
	fs.DurationVar(&c.PopularRefresh, "popular-refresh", c.PopularRefresh, "how often the popular list is re-read")
	fs.DurationVar(&c.TrendingRefresh, "trending-refresh", c.TrendingRefresh, "how often the trending list is re-read")
	fs.DurationVar(&c.CatalogSync, "catalog-sync", c.CatalogSync, "how often catalog changes are applied")
	fs.DurationVar(&c.ModelPoll, "model-poll", c.ModelPoll, "model registry polling interval (besides pub/sub)")
	fs.IntVar(&c.Limits.MaxBatch, "max-batch", c.Limits.MaxBatch, "events or items per write request")
	fs.IntVar(&c.Shop.MaxPerCategory, "max-per-category", c.Shop.MaxPerCategory, "default cap of items per category in an answer (0: none)")
	fs.IntVar(&c.Shop.MaxPerBrand, "max-per-brand", c.Shop.MaxPerBrand, "default cap of items per brand (catalog Item.brand) in an answer (0: none)")
	fs.IntVar(&c.Shop.MaxPerSeller, "max-per-seller", c.Shop.MaxPerSeller, "default cap of items per seller (catalog Item.seller) in an answer (0: none)")
	fs.IntVar(&c.Shop.RotateAfter, "rotate-after", c.Shop.RotateAfter, "impressions without a click that rotate an item down (negative: off)")
	fs.DurationVar(&c.Shop.RotateWindow, "rotate-window", c.Shop.RotateWindow, "window in which impressions count for rotation")
	fs.Float64Var(&c.Shop.ExploreShare, "explore-share", c.Shop.ExploreShare, "share of slots for new items (negative: off)")
	fs.DurationVar(&c.Shop.NewItemAge, "new-item-age", c.Shop.NewItemAge, "items created this recently are new")
	fs.Float64Var(&c.Shop.NewItemMaxPopularity, "new-item-max-popularity", c.Shop.NewItemMaxPopularity, "decayed popularity below which a new item gets exploration slots")
	fs.StringVar(&c.Shop.ColdSource, "cold-source", c.Shop.ColdSource, "what users without a personalized answer get: popular or trending")
	fs.DurationVar(&c.Shop.RulesPoll, "rules-poll", c.Shop.RulesPoll, "how often blocklist and category changes are checked")
	fs.DurationVar(&c.Segments.NewAge, "segment-new-age", c.Segments.NewAge, "users first seen less than this ago are in the new segment")
	fs.DurationVar(&c.Segments.ActiveAge, "segment-active-age", c.Segments.ActiveAge, "users seen less than this ago are active, others dormant")
	fs.DurationVar(&c.Segments.Window, "segment-window", c.Segments.Window, "window of a segment's spend and purchase frequency")
	fs.IntVar(&c.Profile.SeenCap, "segment-index-cap", c.Profile.SeenCap, "users kept in the index segment selection pages through (least recently active dropped)")
	fs.DurationVar(&c.PushDedupWindow, "push-dedup-window", c.PushDedupWindow, "BatchRecommend leaves out items pushed within this window, unless the request says otherwise")
	fs.Int64Var(&o.pushMiB, "push-memory-budget", o.pushMiB, "MiB all BatchRecommend streams may hold together (profiles being scored, answers not yet sent); "+
		"a stream that does not fit is refused with ResourceExhausted and RetryInfo")
	fs.IntVar(&c.Push.StreamsPerCaller, "push-streams-per-caller", c.Push.StreamsPerCaller, "concurrent BatchRecommend streams of one caller (token or certificate name); more: ResourceExhausted with RetryInfo")
	fs.IntVar(&c.Push.Workers, "push-workers", c.Push.Workers, "BatchRecommend scorings running at once across all streams (the cores push may take from product pages)")
	fs.StringVar(&o.pushCounts, "push-default-counts", o.pushCounts, "BatchRecommend items per user when the request's count is 0, by channel")
	fs.DurationVar(&c.Campaigns.TTL, "push-campaign-ttl", c.Campaigns.TTL, "how long a push campaign's targeted and held-out users are kept after its last call")
	fs.Int64Var(&c.Campaigns.MaxMembers, "push-campaign-max-users", c.Campaigns.MaxMembers, "users stored per group (targeted, held out) of one push campaign")
	fs.DurationVar(&c.Attribution.Window, "attribution-window", c.Attribution.Window, "events count for an answer that showed the item this long before; answer records are kept as long")
	fs.DurationVar(&c.Attribution.PageWindow, "attribution-page-window", c.Attribution.PageWindow, "the same for SimilarItems and BoughtTogether answers (one Redis key each, no user)")
	fs.IntVar(&c.Attribution.PerUserCap, "attribution-answers-per-user", c.Attribution.PerUserCap, "answer records kept per user (the newest)")
	fs.IntVar(&c.Coalesce.MaxBlock, "coalesce-max-block", c.Coalesce.MaxBlock,
		"most concurrent Recommend/SimilarItems requests scored together in one pass over the item factors when every core is busy (0: off)")
	fs.Int64Var(&o.coalesceMiB, "coalesce-block-mib", o.coalesceMiB, "memory cap of one coalesced block's scores (requests × items × 4 bytes), MiB")
	fs.IntVar(&o.indexMin, "index-min-items", o.indexMin, "models with at least this many items are searched through their partitioned (IVF) index, "+
		"smaller ones by scanning 8-bit codes with exact re-ranking (same answers as the float32 scan); 0: the index for every model")
	fs.IntVar(&c.IndexProbe, "index-probe", c.IndexProbe, "partitions of the index a search probes unless their bounds prove the answer earlier, "+
		"then up to twice as many while their likely bound reaches the k-th score (adaptive), more when filters reject candidates "+
		"(0: a quarter of them, recall@20 0.945 on ml-100k and 0.959 on Beauty against the exact scan; the number of partitions or more: exact)")
	fs.IntVar(&c.MaxServingModels, "max-serving-models", c.MaxServingModels, "model versions in memory at once: the current one and those experiment arms name, "+
		"loaded on demand, the least recently used evicted beyond this (1: arms get the current model)")
	return fs
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (daemon.Config, logOptions, error) {
	o := defaultOptions()
	fs := newFlagSet(&o, stderr)
	c := &o.cfg
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return *c, o.log, err
	}
	if o.version {
		return *c, o.log, errVersion
	}
	if len(pos) > 0 {
		return *c, o.log, cli.Usagef("unexpected arguments %q (recsysd takes flags only; --help lists them)", pos)
	}
	if err := cli.FillEnv(fs, "RECSYS", getenv); err != nil {
		return *c, o.log, err
	}
	switch {
	case o.indexMin < 0 || c.IndexProbe < 0:
		return *c, o.log, cli.Usagef("--index-min-items and --index-probe must be >= 0")
	case o.indexMin == 0:
		c.IndexMinItems = -1 // recommend's "every model"
	default:
		c.IndexMinItems = o.indexMin
	}
	if o.pushMiB <= 0 {
		return *c, o.log, cli.Usagef("--push-memory-budget must be > 0 MiB, got %d", o.pushMiB)
	}
	c.Push.MemoryBudget = o.pushMiB << 20
	if c.Push.Counts, err = pushsched.ParseChannelCounts(o.pushCounts, pushsched.DefaultChannelCounts); err != nil {
		return *c, o.log, err
	}
	if o.coalesceMiB <= 0 {
		return *c, o.log, cli.Usagef("--coalesce-block-mib must be > 0, got %d", o.coalesceMiB)
	}
	c.Coalesce.BlockBytes = o.coalesceMiB << 20
	for _, origin := range strings.Split(o.corsOrigins, ",") {
		if origin = strings.TrimSpace(origin); origin != "" {
			c.HTTPCORSOrigins = append(c.HTTPCORSOrigins, origin)
		}
	}
	if c.RateLimits, err = server.ParseRateLimits(o.rateLimits, server.DefaultRateLimits()); err != nil {
		return *c, o.log, cli.Usagef("--rate-limits: %w", err)
	}
	if c.DeadlineCaps, err = parseDurations(o.deadlineCaps); err != nil {
		return *c, o.log, cli.Usagef("--deadline-caps: %w", err)
	}
	return *c, o.log, nil
}

// parseDurations parses "key=duration,...".
func parseDurations(s string) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want Method=duration", part)
		}
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		out[strings.TrimSpace(k)] = d
	}
	return out, nil
}
