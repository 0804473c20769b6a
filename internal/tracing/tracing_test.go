package tracing_test

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/recsys-dev/recsys/internal/redistest"
	"github.com/recsys-dev/recsys/internal/tracing"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		getenv  func(string) string
		wantOn  bool
		wantErr string
	}{
		{name: "no endpoint", getenv: env()},
		{name: "endpoint", getenv: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"), wantOn: true},
		{name: "traces endpoint, grpc", getenv: env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4317",
			"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), wantOn: true},
		{name: "sdk disabled", getenv: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", "OTEL_SDK_DISABLED", "true")},
		{name: "exporter none", getenv: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER", "none")},
		{name: "other exporter", getenv: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER", "zipkin"),
			wantErr: "OTEL_TRACES_EXPORTER"},
		{name: "bad protocol", getenv: env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
			wantErr: "OTEL_EXPORTER_OTLP_PROTOCOL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tracing.Enabled(tc.getenv); got != (tc.wantOn || tc.wantErr != "") {
				t.Errorf("Enabled = %v", got)
			}
			p, err := tracing.FromEnv(context.Background(), tc.getenv, "recsysd")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.TracerProvider() != nil; got != tc.wantOn {
				t.Fatalf("provider present = %v, want %v", got, tc.wantOn)
			}
			if err := p.Shutdown(context.Background()); err != nil { // nothing buffered: nothing is sent
				t.Fatal(err)
			}
		})
	}
}

// The Redis hook opens a client span per command and per pipeline under
// the caller's span; a missing key is no error, a failed command is.
func TestRedisHook(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	p := tracing.New(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	rdb.AddHook(tracing.RedisHook(p.TracerProvider()))

	ctx, parent := p.TracerProvider().Tracer("test").Start(context.Background(), "parent")
	if err := rdb.Get(ctx, prefix+"missing").Err(); err != redis.Nil {
		t.Fatalf("GET missing: %v", err)
	}
	if _, err := rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		pl.Set(ctx, prefix+"a", "1", 0)
		pl.Incr(ctx, prefix+"a")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Incr(ctx, prefix+"counter").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.LPush(ctx, prefix+"counter", "x").Err(); err == nil { // WRONGTYPE
		t.Fatal("LPUSH on a string key succeeded")
	}
	parent.End()

	byName := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		byName[s.Name] = s
	}
	for _, tc := range []struct {
		name    string
		wantErr bool
	}{
		{"redis GET", false}, {"redis pipeline", false}, {"redis INCR", false}, {"redis LPUSH", true},
	} {
		s, ok := byName[tc.name]
		if !ok {
			t.Errorf("no %q span; spans: %v", tc.name, exp.GetSpans())
			continue
		}
		if s.Parent.SpanID() != parent.SpanContext().SpanID() || s.SpanKind != trace.SpanKindClient {
			t.Errorf("%s: parent %v kind %v, want the caller's span, client", tc.name, s.Parent.SpanID(), s.SpanKind)
		}
		if got := s.Status.Code == codes.Error; got != tc.wantErr {
			t.Errorf("%s: status %v, want error %v", tc.name, s.Status, tc.wantErr)
		}
	}
	for _, a := range byName["redis pipeline"].Attributes {
		if a.Key == "db.operation.batch.size" && a.Value.AsInt64() != 2 {
			t.Errorf("pipeline batch size %d, want 2", a.Value.AsInt64())
		}
	}
}
