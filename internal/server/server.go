// Package server is the gRPC edge of recsysd: it registers the v1 services,
// grpc.health.v1 and reflection, and builds the interceptor chain. In order:
//
//	metrics, logging               every call, as the caller saw it (a failed call at
//	                               INFO or above, a successful one at DEBUG, with the
//	                               caller and the recommendation id: calllog.go)
//	auth (selector)                who calls (token or client certificate), may it call this method
//	rate limit (selector)          a token bucket per caller
//	deadline cap                   bounds the context by the method's maximum
//	error mapping                  every handler error becomes a status in one function (toStatus)
//	validation                     requests are checked before any handler runs
//	recovery                       a panic becomes Internal
//
// Health and reflection pass the selector without credentials. Who may call
// what, and for how long, is one table (methodTable in access.go). The codec
// turns undecodable requests (invalid UTF-8) into InvalidArgument instead of
// grpc-go's Internal (codec.go). When Redis is down or slow, Recommend
// answers degraded from the in-process snapshot (degraded.go).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync/atomic"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/ratelimit"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/metrics"
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/registry"
	"github.com/recsys-dev/recsys/internal/tracing"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// DefaultMaxRecvMsgBytes is the default Config.MaxRecvMsgBytes.
const DefaultMaxRecvMsgBytes = 4 << 20

// Config tunes the edge; zero fields get defaults.
type Config struct {
	Limits    Limits
	Weighting event.Weighting // for GetProfile weights; default event.DefaultWeighting()
	// Segments are the thresholds of the segment GetProfile reports;
	// zero fields take profile's defaults.
	Segments profile.SegmentConfig
	// MaxRecvMsgBytes caps one request message; default 4 MiB. A larger
	// message is refused with ResourceExhausted before it is decoded.
	MaxRecvMsgBytes int
	Now             func() time.Time

	// Auth authenticates callers. Nil means authentication is off: every
	// caller is access.Anonymous (all roles). The method table applies
	// either way.
	Auth *access.Authenticator
	// TLS, when set, serves TLS (and verifies client certificates as its
	// ClientAuth says). Nil: plaintext.
	TLS *tls.Config
	// RateLimits per role; nil: DefaultRateLimits(). An empty map means no
	// limits.
	RateLimits RateLimits
	// DeadlineCaps overrides the method table's deadline caps, keyed by
	// full method name or bare method name ("Recommend").
	DeadlineCaps map[string]time.Duration
	// Keepalive and KeepalivePolicy; zero values: DefaultKeepalive() and
	// DefaultKeepalivePolicy().
	Keepalive       keepalive.ServerParameters
	KeepalivePolicy keepalive.EnforcementPolicy
	// MaxConcurrentStreams bounds the calls in flight on one connection;
	// default 1024.
	MaxConcurrentStreams uint32
	// TracerProvider, when set, opens a server span per RPC (health
	// checks excepted) and continues the caller's trace (internal/tracing);
	// nil: no tracing.
	TracerProvider trace.TracerProvider
	// ModelPoll is how often the replicas read the model registry (their
	// --model-poll), which ActivateModel reports; default
	// registry.DefaultPollInterval.
	ModelPoll time.Duration
	// ModelSwitchWait bounds how long ActivateModel waits for this
	// replica to serve the version; default 10 s.
	ModelSwitchWait time.Duration
}

// Deps are the parts the services use.
type Deps struct {
	// Regional counts the popularity of events that carry a region
	// (implemented by *profile.Regional); nil: none.
	Regional    RegionalCounter
	Logger      *slog.Logger
	Recommender Recommender
	Serving     ServingModel
	Profiles    Profiles
	Catalog     CatalogStore
	Rules       ShopRules   // may be nil: the blocklist and category RPCs answer FailedPrecondition
	CatalogView CatalogView // may be nil
	// Search matches the queries of SEARCH events against the catalog (may
	// be nil: searches match nothing).
	Search SearchMatcher
	Models ModelRegistry // may be nil: ListModels/ActivateModel answer FailedPrecondition
	// Fallback answers Recommend when the profile store fails (may be nil:
	// Recommend then fails with Unavailable like the other RPCs).
	Fallback Fallback
	// Bought answers BoughtTogether (may be nil: it answers
	// FailedPrecondition).
	Bought BoughtRecommender
	// Pusher answers BatchRecommend (may be nil: it answers
	// FailedPrecondition).
	Pusher Pusher
	// Attribution records the answers of Recommend and RankItems and
	// attributes later events to them (may be nil: nothing is recorded).
	Attribution Attributor
	// Outcomes counts attributed events in the daily metrics (may be nil).
	Outcomes OutcomeCounter
	// Experiments keeps the experiment definitions and Running the
	// replica's copy of the running ones (may be nil: ExperimentService
	// answers FailedPrecondition and nobody is in an experiment).
	Experiments ExperimentStore
	Running     RunningExperiments
	// Campaigns are the push campaigns' groups for GetReport's campaign
	// lift (may be nil; the profiles are read through Profiles, which must
	// then also be a ProfileBatches).
	Campaigns CampaignUsers
	// ArmModels answers the users of arms that name a model version (may
	// be nil: they get the current model).
	ArmModels ArmModels
	// Counters and Tally answer GetReport: the daily counters and the
	// experiment users' totals (may be nil).
	Counters DailyCounters
	Tally    ArmTallies
	// Metrics counts answers, degraded answers, rate-limit refusals and
	// events (nil: a private set, not exported; Collectors still returns
	// it).
	Metrics *metrics.Set
}

// Server is a ready-to-serve gRPC server with health and metrics.
type Server struct {
	grpc       *grpc.Server
	healthOnly *grpc.Server // plaintext health for probes, see ServeHealth
	inproc     *grpc.Server // the v1 services for in-process callers, see DialInProcess
	pipe       *bufconn.Listener
	health     *health.Server
	metrics    *grpcprom.ServerMetrics
	extra      []prometheus.Collector
	log        *slog.Logger
	// backendUp is the result of the last readiness check (true until one
	// fails); everUp is set by the first good one.
	backendUp   atomic.Bool
	everUp      atomic.Bool
	canFallback bool
	tp          trace.TracerProvider // nil: no tracing
}

// Services lists the names health reports on, besides the overall "".
var Services = []string{
	recsysv1.RecommendationService_ServiceDesc.ServiceName,
	recsysv1.EventService_ServiceDesc.ServiceName,
	recsysv1.CatalogService_ServiceDesc.ServiceName,
	recsysv1.ModelService_ServiceDesc.ServiceName,
	recsysv1.ExperimentService_ServiceDesc.ServiceName,
}

// profileBatches returns p as a ProfileBatches, or nil.
func profileBatches(p Profiles) ProfileBatches {
	b, _ := p.(ProfileBatches)
	return b
}

// LivenessService is the health name that is SERVING while the process
// runs, whatever its backends do: liveness probes ask it, so a Redis outage
// takes servers out of rotation (readiness) without restarting them.
const LivenessService = "liveness"

// New builds the server. Health starts NOT_SERVING (but LivenessService);
// see Readiness.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Logger == nil || d.Recommender == nil || d.Serving == nil || d.Profiles == nil || d.Catalog == nil {
		return nil, errors.New("server: logger, recommender, serving model, profiles and catalog are required")
	}
	if cfg.Weighting == (event.Weighting{}) {
		cfg.Weighting = event.DefaultWeighting()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxRecvMsgBytes <= 0 {
		cfg.MaxRecvMsgBytes = DefaultMaxRecvMsgBytes
	}
	if cfg.RateLimits == nil {
		cfg.RateLimits = DefaultRateLimits()
	}
	if cfg.Keepalive == (keepalive.ServerParameters{}) {
		cfg.Keepalive = DefaultKeepalive()
	}
	if cfg.KeepalivePolicy == (keepalive.EnforcementPolicy{}) {
		cfg.KeepalivePolicy = DefaultKeepalivePolicy()
	}
	if cfg.MaxConcurrentStreams == 0 {
		cfg.MaxConcurrentStreams = 1024
	}
	if cfg.ModelPoll <= 0 {
		cfg.ModelPoll = registry.DefaultPollInterval
	}
	if cfg.ModelSwitchWait <= 0 {
		cfg.ModelSwitchWait = DefaultModelSwitchWait
	}
	cfg.Segments = cfg.Segments.WithDefaults()
	if err := cfg.Segments.Validate(); err != nil {
		return nil, fmt.Errorf("server config: %w", err)
	}
	caps, err := newDeadlineCaps(cfg.DeadlineCaps)
	if err != nil {
		return nil, err
	}
	log := d.Logger
	rpcMetrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets([]float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5}),
	))
	m := d.Metrics
	if m == nil {
		m = metrics.New(cfg.Now)
	}
	v := &validator{l: cfg.Limits.withDefaults(), now: cfg.Now}
	codec := newRequestCodec()
	az := &authorizer{authn: cfg.Auth, log: log}
	limiter := newRateLimiter(cfg.RateLimits, cfg.Now, m)
	outage := newOutageLog(log, cfg.Now)
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall), logging.WithLevels(callLogLevel),
		logging.WithFieldsFromContext(callLogFields)}
	notesStart, notesStartStream := callNotes()
	notesFill, notesFillStream := noteCall()
	recoverOpt := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})

	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgBytes),
		grpc.MaxConcurrentStreams(cfg.MaxConcurrentStreams),
		grpc.KeepaliveParams(cfg.Keepalive),
		grpc.KeepaliveEnforcementPolicy(cfg.KeepalivePolicy),
		grpc.ForceServerCodecV2(codec),
		grpc.ChainUnaryInterceptor(
			codec.takeDecodeError(), // bookkeeping only; must see every call first
			rpcMetrics.UnaryServerInterceptor(),
			notesStart,
			logging.UnaryServerInterceptor(interceptorLogger(log), logOpts...),
			selector.UnaryServerInterceptor(auth.UnaryServerInterceptor(az.authenticate), guarded),
			notesFill,
			selector.UnaryServerInterceptor(ratelimit.UnaryServerInterceptor(limiter), guarded),
			caps.unary(),
			errorMapping(log, outage),
			codec.encodeAnswers(),
			v.unary(),
			recovery.UnaryServerInterceptor(recoverOpt),
		),
		grpc.ChainStreamInterceptor(
			rpcMetrics.StreamServerInterceptor(),
			notesStartStream,
			logging.StreamServerInterceptor(interceptorLogger(log), logOpts...),
			selector.StreamServerInterceptor(auth.StreamServerInterceptor(az.authenticate), guarded),
			notesFillStream,
			selector.StreamServerInterceptor(ratelimit.StreamServerInterceptor(limiter), guarded),
			caps.stream(),
			streamErrorMapping(log, outage),
			streamValidation(codec, v),
			recovery.StreamServerInterceptor(recoverOpt),
		),
	}
	if cfg.TracerProvider != nil {
		opts = append(opts, grpc.StatsHandler(tracing.GRPCServerHandler(cfg.TracerProvider)))
	}
	// inproc has every option and interceptor of g but TLS: its
	// connections never leave the process (an in-memory pipe).
	inproc := grpc.NewServer(opts...)
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
	}
	g := grpc.NewServer(opts...)
	s := &Server{grpc: g, inproc: inproc, pipe: bufconn.Listen(1 << 20), metrics: rpcMetrics, extra: append(m.Collectors(), codec.unencodable), log: log,
		canFallback: d.Fallback != nil, tp: cfg.TracerProvider}
	s.backendUp.Store(true)
	deg := &degradation{fallback: d.Fallback, log: log, metrics: m, now: cfg.Now}
	// The services are registered on the network server and on the
	// in-process one the HTTP/JSON gateway calls (see DialInProcess).
	for _, g := range []*grpc.Server{g, s.inproc} {
		recsysv1.RegisterRecommendationServiceServer(g, &recommendationService{rec: d.Recommender, bought: d.Bought, push: d.Pusher,
			degrade: deg, srv: s, answers: &answerRecorder{attr: d.Attribution, now: cfg.Now}, running: d.Running,
			serving: d.Serving, armModels: d.ArmModels, log: log})
		recsysv1.RegisterEventServiceServer(g, &eventService{log: log, attr: d.Attribution, outcomes: d.Outcomes, profiles: d.Profiles, catalog: d.CatalogView, search: d.Search, regional: d.Regional, weighting: cfg.Weighting,
			segments: cfg.Segments, now: cfg.Now, metrics: m, forget: forgetter(d.Experiments, d.Tally), erasers: erasersOf(d)})
		recsysv1.RegisterCatalogServiceServer(g, &catalogService{store: d.Catalog, rules: d.Rules})
		recsysv1.RegisterModelServiceServer(g, &modelService{serving: d.Serving, registry: d.Models,
			switchWait: cfg.ModelSwitchWait, poll: cfg.ModelPoll})
		recsysv1.RegisterExperimentServiceServer(g, &experimentService{log: log, store: d.Experiments, running: d.Running,
			counters: d.Counters, tally: d.Tally, models: d.Models, now: cfg.Now, campaigns: d.Campaigns, profiles: profileBatches(d.Profiles)})
	}

	s.health = health.NewServer()
	for _, name := range append([]string{""}, Services...) {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	s.health.SetServingStatus(LivenessService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(g, s.health)
	reflection.Register(g)
	rpcMetrics.InitializeMetrics(g)
	s.healthOnly = grpc.NewServer(grpc.MaxRecvMsgSize(1<<16), grpc.ForceServerCodecV2(codec),
		grpc.ChainUnaryInterceptor(codec.takeDecodeError()), grpc.ChainStreamInterceptor(streamValidation(codec, v)))
	healthpb.RegisterHealthServer(s.healthOnly, s.health)
	if cfg.Auth == nil {
		log.Warn("AUTHENTICATION IS OFF: every caller may call every RPC, including reading and deleting profiles")
	}
	return s, nil
}

// interceptorLogger adapts slog to the logging middleware.
func interceptorLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

// GRPC returns the underlying server (for tests over bufconn).
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Collectors returns every collector of the edge: the RPC metrics and the
// metrics.Set (answers, degraded answers, rate-limit refusals, events,
// model and Redis figures), to register on /metrics.
func (s *Server) Collectors() []prometheus.Collector {
	return append([]prometheus.Collector{s.metrics}, s.extra...)
}

// SetServing sets the overall and every service's health, and whether the
// backend counts as up.
func (s *Server) SetServing(ok bool) {
	s.backendUp.Store(ok)
	if ok {
		s.everUp.Store(true)
	}
	for _, name := range append([]string{""}, Services...) {
		s.setHealth(name, ok)
	}
}

// setBackend applies a readiness check's result to health. What each name
// reports is what the server can still do without Redis:
//
//   - EventService, CatalogService, ModelService, ExperimentService follow Redis: they cannot
//     store or read anything without it.
//   - RecommendationService and the overall "" (what load balancers and
//     Kubernetes readiness ask) stay SERVING during an outage once the
//     server has reached Redis at least once and has a Fallback: Recommend
//     answers degraded from the in-process snapshot, which is better for a
//     product page than no answer (every replica shares the same Redis, so
//     taking them all out of rotation would help nobody). Before the first
//     successful check they are NOT_SERVING: there is no snapshot yet.
func (s *Server) setBackend(ok bool) {
	s.backendUp.Store(ok)
	if ok {
		s.everUp.Store(true)
	}
	for _, name := range []string{
		recsysv1.EventService_ServiceDesc.ServiceName,
		recsysv1.CatalogService_ServiceDesc.ServiceName,
		recsysv1.ModelService_ServiceDesc.ServiceName,
		recsysv1.ExperimentService_ServiceDesc.ServiceName,
	} {
		s.setHealth(name, ok)
	}
	rec := ok || (s.canFallback && s.everUp.Load())
	s.setHealth("", rec)
	s.setHealth(recsysv1.RecommendationService_ServiceDesc.ServiceName, rec)
}

func (s *Server) setHealth(name string, ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus(name, st)
}

// BackendUp reports the last readiness check's result (true before any).
func (s *Server) BackendUp() bool { return s.backendUp.Load() }

// Serve serves on lis until Shutdown.
func (s *Server) Serve(lis net.Listener) error {
	if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// ServeHealth serves grpc.health.v1 alone, in plaintext and without
// authentication, on lis until Shutdown: for probes that cannot speak TLS
// (Kubernetes' native gRPC probes) when the main port serves TLS.
func (s *Server) ServeHealth(lis net.Listener) error {
	if err := s.healthOnly.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// Shutdown reports NOT_SERVING first (so load balancers stop sending), then
// drains in-flight RPCs until ctx ends, then stops hard.
func (s *Server) Shutdown(ctx context.Context) {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		s.inproc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("drain time over, stopping hard")
		s.grpc.Stop()
		s.inproc.Stop()
		<-done
	}
	s.healthOnly.Stop()
}

// ServeInProcess serves the v1 services to DialInProcess connections until
// Shutdown.
func (s *Server) ServeInProcess() error {
	if err := s.inproc.Serve(s.pipe); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// DialInProcess connects to the v1 services through an in-memory pipe
// (served by ServeInProcess). A call on it passes the same interceptors as
// one from the network: metrics, logging, authentication by the
// authorization metadata, rate limits, deadline caps, validation, error
// mapping, recovery, and the message size limit. Only client certificates
// do not exist in process: its callers authenticate by token. The HTTP/JSON
// gateway (internal/httpapi) calls the server this way, so its answers are
// the gRPC ones by construction rather than by a second copy of the rules.
//
// With tracing on, the connection sends the caller's trace context along,
// so the server spans of its calls join the HTTP request's trace.
func (s *Server) DialInProcess() (*grpc.ClientConn, error) {
	opts := []grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.pipe.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}
	if s.tp != nil {
		opts = append(opts, grpc.WithStatsHandler(tracing.GRPCClientHandler(s.tp)))
	}
	return grpc.NewClient("passthrough:///in-process", opts...)
}
