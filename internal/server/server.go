// Package server is the gRPC edge of recsysd: it registers the v1 services,
// grpc.health.v1 and reflection, and builds the interceptor chain (metrics,
// logging, error mapping, validation, recovery). Requests are validated
// before any handler runs, and every handler error becomes a status in one
// function (toStatus).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/recsys-dev/recsys/internal/event"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// Config tunes the edge; zero fields get defaults.
type Config struct {
	Limits    Limits
	Weighting event.Weighting // for GetProfile weights; default event.DefaultWeighting()
	// MaxRecvMsgBytes caps one request message; default 4 MiB.
	MaxRecvMsgBytes int
	Now             func() time.Time
}

// Deps are the parts the services use.
type Deps struct {
	Logger      *slog.Logger
	Recommender Recommender
	Serving     ServingModel
	Profiles    Profiles
	Catalog     CatalogStore
	Rules       ShopRules     // may be nil: the blocklist and category RPCs answer FailedPrecondition
	CatalogView CatalogView   // may be nil
	Models      ModelRegistry // may be nil: ListModels/ActivateModel answer FailedPrecondition
}

// Server is a ready-to-serve gRPC server with health and metrics.
type Server struct {
	grpc    *grpc.Server
	health  *health.Server
	metrics *grpcprom.ServerMetrics
	log     *slog.Logger
}

// Services lists the names health reports on, besides the overall "".
var Services = []string{
	recsysv1.RecommendationService_ServiceDesc.ServiceName,
	recsysv1.EventService_ServiceDesc.ServiceName,
	recsysv1.CatalogService_ServiceDesc.ServiceName,
	recsysv1.ModelService_ServiceDesc.ServiceName,
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
		cfg.MaxRecvMsgBytes = 4 << 20
	}
	log := d.Logger
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets([]float64{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5}),
	))
	v := &validator{l: cfg.Limits.withDefaults(), now: cfg.Now}
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall)}
	recoverOpt := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})

	g := grpc.NewServer(
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgBytes),
		grpc.ChainUnaryInterceptor(
			metrics.UnaryServerInterceptor(),
			logging.UnaryServerInterceptor(interceptorLogger(log), logOpts...),
			errorMapping(log),
			v.unary(),
			recovery.UnaryServerInterceptor(recoverOpt),
		),
		grpc.ChainStreamInterceptor(
			metrics.StreamServerInterceptor(),
			logging.StreamServerInterceptor(interceptorLogger(log), logOpts...),
			streamErrorMapping(log),
			recovery.StreamServerInterceptor(recoverOpt),
		),
	)
	recsysv1.RegisterRecommendationServiceServer(g, &recommendationService{rec: d.Recommender})
	recsysv1.RegisterEventServiceServer(g, &eventService{profiles: d.Profiles, catalog: d.CatalogView, weighting: cfg.Weighting, now: cfg.Now})
	recsysv1.RegisterCatalogServiceServer(g, &catalogService{store: d.Catalog, rules: d.Rules})
	recsysv1.RegisterModelServiceServer(g, &modelService{serving: d.Serving, registry: d.Models})

	hs := health.NewServer()
	for _, name := range append([]string{""}, Services...) {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	hs.SetServingStatus(LivenessService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)
	metrics.InitializeMetrics(g)
	return &Server{grpc: g, health: hs, metrics: metrics, log: log}, nil
}

// interceptorLogger adapts slog to the logging middleware.
func interceptorLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

// GRPC returns the underlying server (for tests over bufconn).
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Metrics returns the RPC metrics collector, to register on /metrics.
func (s *Server) Metrics() prometheus.Collector { return s.metrics }

// SetServing sets the overall and every service's health.
func (s *Server) SetServing(ok bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for _, name := range append([]string{""}, Services...) {
		s.health.SetServingStatus(name, st)
	}
}

// Serve serves on lis until Shutdown.
func (s *Server) Serve(lis net.Listener) error {
	if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
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
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("drain time over, stopping hard")
		s.grpc.Stop()
		<-done
	}
}
