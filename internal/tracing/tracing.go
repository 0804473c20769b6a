// Package tracing sets up OpenTelemetry tracing for recsysd: a tracer
// provider configured by the standard OTEL_* environment variables, the
// gRPC and HTTP server instrumentation, and a go-redis hook that opens one
// client span per Redis command or pipeline.
//
// Tracing is on only when an OTLP endpoint is set
// (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT) and
// neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none says
// otherwise. Off, every part here is absent rather than a no-op: no stats
// handler, no hook, no span in the engine, so tracing costs nothing unless
// it is asked for.
//
// The variables read here decide whether and how to export; the OTLP
// exporter, the sampler and the batch span processor read their own
// (OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TIMEOUT,
// OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, OTEL_BSP_*), and the
// resource takes OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, all from
// the process environment, as the OpenTelemetry specification describes.
//
// Nothing here is global: the provider is passed to the parts that trace,
// and the W3C trace-context and baggage propagators are set on each
// instrumentation, not on otel's global state.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc/filters"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/stats"
)

// Scope is the instrumentation scope of recsys' own spans.
const Scope = "github.com/recsys-dev/recsys"

// Enabled reports whether the environment asks for traces to be exported:
// an OTLP endpoint is set, the SDK is not disabled and the traces exporter
// is not "none".
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	if strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")) == "none" {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

// Provider is a tracer provider and how to stop it.
type Provider struct {
	tp *sdktrace.TracerProvider
}

// FromEnv returns the provider the environment asks for, or nil (and no
// error) when tracing is off (see Enabled). service is the default service
// name (OTEL_SERVICE_NAME overrides it). The exporter speaks OTLP over
// gRPC or HTTP/protobuf as OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
// OTEL_EXPORTER_OTLP_PROTOCOL say (default http/protobuf, the
// specification's default).
func FromEnv(ctx context.Context, getenv func(string) string, service string) (*Provider, error) {
	if !Enabled(getenv) {
		return nil, nil
	}
	if e := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); e != "" && e != "otlp" {
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER: only otlp and none are supported, got %q", e)
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var exp sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: want grpc or http/protobuf, got %q", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	res, err := newResource(ctx, service)
	if err != nil {
		return nil, err
	}
	return New(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// newResource describes the process: service.name (service unless
// OTEL_SERVICE_NAME says otherwise), OTEL_RESOURCE_ATTRIBUTES, the SDK.
func newResource(ctx context.Context, service string) (*resource.Resource, error) {
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // last: the environment overrides the default name
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	return res, nil
}

// New returns a provider with the given options: FromEnv's exporter, or in
// tests an in-memory one (sdktrace.WithSyncer(tracetest.NewInMemoryExporter())).
func New(opts ...sdktrace.TracerProviderOption) *Provider {
	return &Provider{tp: sdktrace.NewTracerProvider(opts...)}
}

// TracerProvider is the provider to pass to the parts that trace; nil
// for a nil Provider (tracing off).
func (p *Provider) TracerProvider() trace.TracerProvider {
	if p == nil {
		return nil
	}
	return p.tp
}

// Shutdown exports the spans still buffered and stops the provider. A nil
// Provider does nothing.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.tp.Shutdown(ctx)
}

// propagator carries trace context and baggage in W3C headers (gRPC
// metadata and HTTP headers alike).
func propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// GRPCServerHandler is the stats handler that opens a server span per RPC
// (health checks excepted: probes would drown the traces), continuing a
// trace whose context the caller sent.
func GRPCServerHandler(tp trace.TracerProvider) stats.Handler {
	return otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(propagator()),
		otelgrpc.WithMeterProvider(noopmetric.NewMeterProvider()), // metrics are Prometheus' (internal/metrics)
		otelgrpc.WithFilter(filters.Not(filters.HealthCheck())))
}

// GRPCClientHandler is the stats handler that opens a client span per call
// and sends the trace context along (the HTTP gateway's in-process
// connection, so its gRPC server spans join the HTTP request's trace).
func GRPCClientHandler(tp trace.TracerProvider) stats.Handler {
	return otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(propagator()),
		otelgrpc.WithMeterProvider(noopmetric.NewMeterProvider()))
}

// HTTPHandler wraps h so every request gets a server span named after its
// method and path ("POST /recsys.v1.RecommendationService/Recommend"),
// continuing a trace whose context the caller sent (traceparent header).
func HTTPHandler(tp trace.TracerProvider, h http.Handler) http.Handler {
	return otelhttp.NewHandler(h, "recsys.http", otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(propagator()),
		otelhttp.WithMeterProvider(noopmetric.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }))
}

// RedisHook returns a go-redis hook that opens a client span per command
// ("redis GET") and per pipeline ("redis pipeline"), under the span of the
// command's context. Commands' arguments are not recorded: keys hold user
// ids.
func RedisHook(tp trace.TracerProvider) redis.Hook {
	return redisHook{tracer: tp.Tracer(Scope)}
}

type redisHook struct{ tracer trace.Tracer }

var _ redis.Hook = redisHook{}

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ctx, span := h.tracer.Start(ctx, "redis dial", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("db.system.name", "redis"), attribute.String("server.address", addr)))
		defer span.End()
		conn, err := next(ctx, network, addr)
		recordError(span, err)
		return conn, err
	}
}

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		ctx, span := h.tracer.Start(ctx, "redis "+strings.ToUpper(cmd.Name()), trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("db.system.name", "redis"), attribute.String("db.operation.name", cmd.Name())))
		defer span.End()
		err := next(ctx, cmd)
		recordError(span, err)
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		names := make([]string, 0, min(len(cmds), 8))
		for i, c := range cmds {
			if i == 8 {
				names = append(names, "…")
				break
			}
			names = append(names, c.Name())
		}
		ctx, span := h.tracer.Start(ctx, "redis pipeline", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("db.system.name", "redis"), attribute.String("db.operation.name", "pipeline"),
				attribute.Int("db.operation.batch.size", len(cmds)), attribute.StringSlice("recsys.redis.commands", names)))
		defer span.End()
		err := next(ctx, cmds)
		recordError(span, err)
		return err
	}
}

// recordError marks span failed for err; redis.Nil (a missing key) is an
// answer, not a failure.
func recordError(span trace.Span, err error) {
	if err == nil || errors.Is(err, redis.Nil) {
		return
	}
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}
