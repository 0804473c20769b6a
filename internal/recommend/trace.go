package recommend

import (
	"context"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// noSpan is the span of a context without one: it records nothing.
var noSpan = trace.SpanFromContext(context.Background())

// span starts a child span of ctx named name when the engine traces
// (Config.Tracer). Without a tracer it returns ctx and a span that records
// nothing, without allocating: the untraced hot path pays one comparison.
func (e *Engine) span(ctx context.Context, name string) (context.Context, trace.Span) {
	if e.cfg.Tracer == nil {
		return ctx, noSpan
	}
	return e.cfg.Tracer.Start(ctx, name)
}

// endSpan ends span, marking it failed when err is not nil.
func endSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
