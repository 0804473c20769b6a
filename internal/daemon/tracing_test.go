package daemon_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/tracing"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// spansOf returns the ended spans of one trace, by name (a name may occur
// more than once: Redis commands).
func spansOf(exp *tracetest.InMemoryExporter, id trace.TraceID) map[string][]tracetest.SpanStub {
	out := map[string][]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		if s.SpanContext.TraceID() == id {
			out[s.Name] = append(out[s.Name], s)
		}
	}
	return out
}

// waitSpans returns the spans of trace id once the server span named name
// has ended: a server span ends after the caller has its answer.
func waitSpans(t *testing.T, exp *tracetest.InMemoryExporter, id trace.TraceID, name string) map[string][]tracetest.SpanStub {
	t.Helper()
	var spans map[string][]tracetest.SpanStub
	eventually(t, "server span "+name, func() bool {
		spans = spansOf(exp, id)
		for _, s := range spans[name] {
			if s.SpanKind == trace.SpanKindServer {
				return true
			}
		}
		return false
	})
	return spans
}

// checkRecommendTrace checks that the trace of one personalized Recommend
// holds the server span, the engine's stages under it and the Redis
// commands under the profile load.
func checkRecommendTrace(t *testing.T, spans map[string][]tracetest.SpanStub) {
	t.Helper()
	srv := spans["recsys.v1.RecommendationService/Recommend"]
	var server tracetest.SpanStub
	for _, s := range srv {
		if s.SpanKind == trace.SpanKindServer {
			server = s
		}
	}
	if !server.SpanContext.IsValid() {
		t.Fatalf("no gRPC server span for Recommend; spans: %v", names(spans))
	}
	for _, stage := range []string{"recommend.profile_load", "recommend.filter", "recommend.fold_in", "recommend.score",
		"recommend.select", "recommend.fill"} {
		got := spans[stage]
		if len(got) != 1 {
			t.Errorf("%d %s spans, want 1; spans: %v", len(got), stage, names(spans))
			continue
		}
		if got[0].Parent.SpanID() != server.SpanContext.SpanID() {
			t.Errorf("%s: parent %v, want the server span %v", stage, got[0].Parent.SpanID(), server.SpanContext.SpanID())
		}
	}
	if load := spans["recommend.profile_load"]; len(load) == 1 {
		redisUnder := 0
		for name, ss := range spans {
			for _, s := range ss {
				if strings.HasPrefix(name, "redis ") && s.Parent.SpanID() == load[0].SpanContext.SpanID() {
					redisUnder++
					if s.SpanKind != trace.SpanKindClient {
						t.Errorf("%s: kind %v, want client", name, s.SpanKind)
					}
				}
			}
		}
		if redisUnder == 0 {
			t.Errorf("no Redis span under the profile load; spans: %v", names(spans))
		}
	}
	if score := spans["recommend.score"]; len(score) == 1 {
		found := false
		for _, a := range score[0].Attributes {
			if a.Key == "recsys.score.method" {
				found = a.Value.AsString() == "index" || a.Value.AsString() == "full_scan"
			}
		}
		if !found {
			t.Errorf("score span attributes %v: want recsys.score.method index or full_scan", score[0].Attributes)
		}
	}
}

func names(spans map[string][]tracetest.SpanStub) []string {
	var out []string
	for n := range spans {
		out = append(out, n)
	}
	return out
}

// With a tracer provider, a Recommend over gRPC and one over HTTP/JSON
// each give one trace that continues the caller's (W3C traceparent): the
// server span, the engine's stages and the Redis commands. Health checks
// leave no spans.
func TestTracesOfRecommend(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := tracing.New(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	r := start(t, func(c *daemon.Config) {
		c.TracerProvider = tp.TracerProvider()
		c.HTTPAddr = "127.0.0.1:0"
	})
	ctx := context.Background()
	var evs []*recsysv1.Event
	for k := 0; k < 5; k++ {
		evs = append(evs, &recsysv1.Event{EventId: "e" + string(rune('0'+k)), UserId: "u1", ItemId: "i" + string(rune('0'+k)),
			Type: recsysv1.EventType_EVENT_TYPE_VIEW})
	}
	if _, err := r.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: evs}); err != nil {
		t.Fatal(err)
	}
	v, err := r.reg.Publish(ctx, model(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the model", func() bool { return r.servingVersion(t) == v.Name() })

	t.Run("grpc", func(t *testing.T) {
		const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		cctx := metadata.AppendToOutgoingContext(ctx, "traceparent", parent)
		res, err := r.rec.Recommend(cctx, &recsysv1.RecommendRequest{UserId: "u1", Count: 5})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED {
			t.Fatalf("source %v, want personalized", res.GetSource())
		}
		id, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
		spans := waitSpans(t, exp, id, "recsys.v1.RecommendationService/Recommend")
		checkRecommendTrace(t, spans)
		for _, s := range spans["recsys.v1.RecommendationService/Recommend"] {
			if s.Parent.SpanID().String() != "b7ad6b7169203331" {
				t.Errorf("server span's parent %v, want the caller's b7ad6b7169203331", s.Parent.SpanID())
			}
		}
	})

	t.Run("http", func(t *testing.T) {
		const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		req, err := http.NewRequest(http.MethodPost, "http://"+r.d.HTTPAddr().String()+"/recsys.v1.RecommendationService/Recommend",
			strings.NewReader(`{"userId":"u1","count":5}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+operatorToken)
		req.Header.Set("traceparent", parent)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		id, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
		waitSpans(t, exp, id, "POST /recsys.v1.RecommendationService/Recommend")
		spans := waitSpans(t, exp, id, "recsys.v1.RecommendationService/Recommend")
		httpSpans := spans["POST /recsys.v1.RecommendationService/Recommend"]
		if len(httpSpans) != 1 || httpSpans[0].SpanKind != trace.SpanKindServer {
			t.Fatalf("HTTP server spans %v, want one; spans: %v", httpSpans, names(spans))
		}
		if httpSpans[0].Parent.SpanID().String() != "00f067aa0ba902b7" {
			t.Errorf("HTTP span's parent %v, want the caller's", httpSpans[0].Parent.SpanID())
		}
		checkRecommendTrace(t, spans)
	})

	for _, s := range exp.GetSpans() {
		if strings.Contains(s.Name, "grpc.health.v1") {
			t.Errorf("a health check was traced: %s", s.Name)
		}
	}
}
