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
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/cli"
	"github.com/recsys-dev/recsys/internal/coalesce"
	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/pushsched"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/redisconn"
	"github.com/recsys-dev/recsys/internal/server"
	"github.com/recsys-dev/recsys/internal/tracing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(cli.Exit("recsysd", err, os.Stderr))
}

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

func parse(args []string, getenv func(string) string, stderr io.Writer) (daemon.Config, logOptions, error) {
	var c daemon.Config
	var lo logOptions
	w := event.DefaultWeighting()
	fs := flag.NewFlagSet("recsysd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = usage(fs, stderr)
	version := fs.Bool("version", false, "print the version and exit")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", "127.0.0.1:50051", "gRPC listen address (:50051: every interface)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "127.0.0.1:9090", "HTTP address of /metrics (empty: off)")
	fs.StringVar(&c.HTTPAddr, "http-addr", "", "serve the API as HTTP/JSON here, POST /recsys.v1.<Service>/<Method> (empty: off)")
	corsOrigins := fs.String("http-cors-origins", "", "comma-separated origins allowed to call the HTTP API from a browser (*: any)")
	fs.StringVar(&c.RedisAddr, "redis-addr", "", "Redis address, or comma-separated cluster seeds; empty: embedded demo store")
	fs.BoolVar(&c.RedisCluster, "redis-cluster", false, "treat a single --redis-addr as a Redis Cluster seed")
	fs.StringVar(&c.RedisPassword, "redis-password", "", "Redis password")
	fs.IntVar(&c.RedisDB, "redis-db", 0, "Redis database number (not for clusters)")
	fs.DurationVar(&c.RedisDialTimeout, "redis-dial-timeout", time.Second, "Redis connect timeout")
	fs.DurationVar(&c.RedisTimeout, "redis-timeout", time.Second, "Redis read/write timeout of one command")
	fs.IntVar(&c.RedisMaxRetries, "redis-max-retries", 2, "retries of a Redis command after a network error (-1: none)")
	fs.DurationVar(&c.ProfileBudget, "profile-budget", daemon.DefaultProfileBudget,
		"longest wait for a user's profile in Recommend before answering degraded (negative: until the RPC deadline)")
	fs.StringVar(&c.TokensFile, "tokens-file", "", "callers' tokens, one 'roles:name:sha256hex' per line (see recsysctl token new)")
	fs.StringVar(&c.Tokens, "tokens", "", "callers' tokens inline, comma-separated 'roles:name:sha256hex' (instead of --tokens-file)")
	fs.DurationVar(&c.TokensReload, "tokens-reload", 30*time.Second, "how often --tokens-file is re-read")
	fs.BoolVar(&c.InsecureNoAuth, "insecure-no-auth", false, "serve without authentication (every caller may do everything)")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "server certificate (PEM); with --tls-key turns TLS on")
	fs.StringVar(&c.TLSKey, "tls-key", "", "server private key (PEM)")
	fs.StringVar(&c.ClientCA, "client-ca", "", "CA (PEM) that signs client certificates; CN = caller name, O=recsys:<role> = role")
	fs.BoolVar(&c.RequireClientCert, "require-client-cert", false, "refuse TLS connections without a client certificate")
	fs.StringVar(&c.HealthAddr, "health-addr", "", "also serve plaintext grpc.health.v1 alone here (for probes when the main port is TLS)")
	rateLimits := fs.String("rate-limits", "", "per-caller rate limits by role, 'role=rate[:burst],...' (0: unlimited); "+
		"default pages=5000:10000,events=2000:4000,push=20:40,operator=500:1000")
	deadlineCaps := fs.String("deadline-caps", "", "per-method deadline caps overriding the built-in ones, 'Method=duration,...'")
	fs.IntVar(&c.MaxRecvMsgBytes, "max-recv-msg-bytes", 4<<20, "largest request message")
	fs.DurationVar(&c.MaxConnectionAge, "max-connection-age", 30*time.Minute, "clients reconnect after this (spreads load over new replicas)")
	fs.StringVar(&c.Prefix, "prefix", "recsys", "prefix of every Redis key")
	fs.StringVar(&c.ModelsDir, "models-dir", "", "serve models from this directory instead of the Redis registry")
	fs.StringVar(&lo.level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&lo.format, "log-format", "json", "json or text")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 20*time.Second, "how long SIGTERM waits for in-flight RPCs")
	fs.IntVar(&c.Profile.HistoryCap, "history-cap", 200, "recent events kept per user")
	fs.IntVar(&c.Profile.PurchasedCap, "purchased-cap", 500, "purchased items kept per user")
	fs.DurationVar(&c.Profile.UserTTL, "user-ttl", 180*24*time.Hour, "TTL of a user's keys, refreshed on activity")
	fs.DurationVar(&w.HalfLife, "half-life", w.HalfLife, "event weight half-life")
	fs.Float64Var(&w.View, "weight-view", w.View, "weight of a view")
	fs.Float64Var(&w.AddToCart, "weight-cart", w.AddToCart, "weight of an add-to-cart")
	fs.Float64Var(&w.Purchase, "weight-purchase", w.Purchase, "weight of a purchase")
	fs.Float64Var(&w.Wishlist, "weight-wishlist", w.Wishlist, "weight of an add-to-wishlist")
	fs.Float64Var(&w.Rating, "weight-rating", w.Rating, "weight of a 5-star rating (a rating r > 3 weighs it × (r-3)/2)")
	fs.DurationVar(&c.Profile.NotInterestedTTL, "not-interested-ttl", 90*24*time.Hour, "how long a NOT_INTERESTED dismissal (or a rating <= 2) holds")
	fs.DurationVar(&c.PopularRefresh, "popular-refresh", 5*time.Second, "how often the popular list is re-read")
	fs.DurationVar(&c.CatalogSync, "catalog-sync", 500*time.Millisecond, "how often catalog changes are applied")
	fs.DurationVar(&c.ModelPoll, "model-poll", 5*time.Second, "model registry polling interval (besides pub/sub)")
	fs.IntVar(&c.Limits.MaxBatch, "max-batch", 1000, "events or items per write request")
	fs.IntVar(&c.Shop.MaxPerCategory, "max-per-category", 0, "default cap of items per category in an answer (0: none)")
	fs.IntVar(&c.Shop.MaxPerBrand, "max-per-brand", 0, "default cap of items per brand (catalog Item.brand) in an answer (0: none)")
	fs.IntVar(&c.Shop.MaxPerSeller, "max-per-seller", 0, "default cap of items per seller (catalog Item.seller) in an answer (0: none)")
	fs.IntVar(&c.Shop.RotateAfter, "rotate-after", 3, "impressions without a click that rotate an item down (negative: off)")
	fs.DurationVar(&c.Shop.RotateWindow, "rotate-window", 24*time.Hour, "window in which impressions count for rotation")
	fs.Float64Var(&c.Shop.ExploreShare, "explore-share", 0.1, "share of slots for new items (negative: off)")
	fs.DurationVar(&c.Shop.NewItemAge, "new-item-age", 14*24*time.Hour, "items created this recently are new")
	fs.Float64Var(&c.Shop.NewItemMaxPopularity, "new-item-max-popularity", 10, "decayed popularity below which a new item gets exploration slots")
	fs.StringVar(&c.Shop.ColdSource, "cold-source", "popular", "what users without a personalized answer get: popular or trending")
	fs.DurationVar(&c.Shop.RulesPoll, "rules-poll", 250*time.Millisecond, "how often blocklist and category changes are checked")
	fs.DurationVar(&c.Segments.NewAge, "segment-new-age", profile.DefaultSegmentNewAge, "users first seen less than this ago are in the new segment")
	fs.DurationVar(&c.Segments.ActiveAge, "segment-active-age", profile.DefaultSegmentActiveAge, "users seen less than this ago are active, others dormant")
	fs.DurationVar(&c.Segments.Window, "segment-window", profile.DefaultSegmentWindow, "window of a segment's spend and purchase frequency")
	fs.IntVar(&c.Profile.SeenCap, "segment-index-cap", profile.DefaultSeenCap, "users kept in the index segment selection pages through (least recently active dropped)")
	fs.DurationVar(&c.PushDedupWindow, "push-dedup-window", recommend.DefaultPushDedupWindow, "BatchRecommend leaves out items pushed within this window, unless the request says otherwise")
	pushMiB := fs.Int64("push-memory-budget", pushsched.DefaultMemoryBudget>>20, "MiB all BatchRecommend streams may hold together (profiles being scored, answers not yet sent); "+
		"a stream that does not fit is refused with ResourceExhausted and RetryInfo")
	fs.IntVar(&c.Push.StreamsPerCaller, "push-streams-per-caller", pushsched.DefaultStreamsPerCaller, "concurrent BatchRecommend streams of one caller (token or certificate name); more: ResourceExhausted with RetryInfo")
	fs.IntVar(&c.Push.Workers, "push-workers", pushsched.DefaultWorkers, "BatchRecommend scorings running at once across all streams (the cores push may take from product pages)")
	pushCounts := fs.String("push-default-counts", pushsched.DefaultChannelCounts.String(), "BatchRecommend items per user when the request's count is 0, by channel")
	fs.DurationVar(&c.Campaigns.TTL, "push-campaign-ttl", pushsched.DefaultCampaignTTL, "how long a push campaign's targeted and held-out users are kept after its last call")
	fs.Int64Var(&c.Campaigns.MaxMembers, "push-campaign-max-users", pushsched.DefaultCampaignMaxMembers, "users stored per group (targeted, held out) of one push campaign")
	fs.DurationVar(&c.Attribution.Window, "attribution-window", 7*24*time.Hour, "events count for an answer that showed the item this long before; answer records are kept as long")
	fs.IntVar(&c.Attribution.PerUserCap, "attribution-answers-per-user", 100, "answer records kept per user (the newest)")
	fs.IntVar(&c.Coalesce.MaxBlock, "coalesce-max-block", coalesce.DefaultMaxBlock,
		"most concurrent Recommend/SimilarItems requests scored together in one pass over the item factors when every core is busy (0: off)")
	coalesceMiB := fs.Int64("coalesce-block-mib", coalesce.DefaultBlockMiB, "memory cap of one coalesced block's scores (requests × items × 4 bytes), MiB")
	indexMin := fs.Int("index-min-items", recommend.DefaultIndexMinItems, "models with at least this many items are searched through their partitioned (IVF) index, "+
		"smaller ones by scanning 8-bit codes with exact re-ranking (same answers as the float32 scan); 0: the index for every model")
	fs.IntVar(&c.IndexProbe, "index-probe", 0, "partitions of the index a search probes unless their bounds prove the answer earlier, "+
		"more when filters reject candidates (0: a quarter of them; half gives recall@20 of about 0.95 against the exact scan on ml-100k and Beauty; the number of partitions or more: exact)")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return c, lo, err
	}
	if *version {
		return c, lo, errVersion
	}
	if len(pos) > 0 {
		return c, lo, cli.Usagef("unexpected arguments %q (recsysd takes flags only; --help lists them)", pos)
	}
	if err := cli.FillEnv(fs, "RECSYS", getenv); err != nil {
		return c, lo, err
	}
	c.Weighting = w
	switch {
	case *indexMin < 0 || c.IndexProbe < 0:
		return c, lo, cli.Usagef("--index-min-items and --index-probe must be >= 0")
	case *indexMin == 0:
		c.IndexMinItems = -1 // recommend's "every model"
	default:
		c.IndexMinItems = *indexMin
	}
	if *pushMiB <= 0 {
		return c, lo, cli.Usagef("--push-memory-budget must be > 0 MiB, got %d", *pushMiB)
	}
	c.Push.MemoryBudget = *pushMiB << 20
	if c.Push.Counts, err = pushsched.ParseChannelCounts(*pushCounts, pushsched.DefaultChannelCounts); err != nil {
		return c, lo, err
	}
	if *coalesceMiB <= 0 {
		return c, lo, cli.Usagef("--coalesce-block-mib must be > 0, got %d", *coalesceMiB)
	}
	c.Coalesce.BlockBytes = *coalesceMiB << 20
	for _, o := range strings.Split(*corsOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.HTTPCORSOrigins = append(c.HTTPCORSOrigins, o)
		}
	}
	if c.RateLimits, err = server.ParseRateLimits(*rateLimits, server.DefaultRateLimits()); err != nil {
		return c, lo, cli.Usagef("--rate-limits: %w", err)
	}
	if c.DeadlineCaps, err = parseDurations(*deadlineCaps); err != nil {
		return c, lo, cli.Usagef("--deadline-caps: %w", err)
	}
	return c, lo, nil
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
