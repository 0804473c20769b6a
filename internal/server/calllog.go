package server

import (
	"context"
	"sync"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/recsys-dev/recsys/internal/access"
)

// The per-call log line ("finished call") is written by the logging
// middleware, which runs before authentication and sees neither the caller
// nor the answer. A callNote carries them back: callNotes puts an empty
// note in the context before the logging middleware, noteCall (after
// authentication) fills in the caller and, from the response, the
// recommendation id, and callLogFields adds them to the line when the call
// finishes.
//
// Successful calls are logged at DEBUG (callLogLevel): at thousands of calls
// a second an INFO line per call is most of the log volume and says less
// than the metrics; failures keep the middleware's levels (INFO for the
// caller's mistakes, WARN for refusals and outages, ERROR for bugs).
type callNote struct {
	mu            sync.Mutex
	caller, recID string
}

type callNoteKey struct{}

func noteFrom(ctx context.Context) *callNote {
	n, _ := ctx.Value(callNoteKey{}).(*callNote)
	return n
}

func (n *callNote) set(caller, recID string) {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if caller != "" {
		n.caller = caller
	}
	if recID != "" {
		n.recID = recID
	}
}

// callNotes puts an empty note in the context of every call; it runs before
// the logging middleware.
func callNotes() (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			return handler(context.WithValue(ctx, callNoteKey{}, &callNote{}), req)
		}, func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			return handler(srv, &noteStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), callNoteKey{}, &callNote{})})
		}
}

type noteStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *noteStream) Context() context.Context { return s.ctx }

// recommendationIDer is every response that carries a recommendation id.
type recommendationIDer interface{ GetRecommendationId() string }

// noteCall fills the note in: the caller authentication found, and the
// recommendation id of the response. It runs after authentication.
func noteCall() (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			n := noteFrom(ctx)
			if c, ok := access.FromContext(ctx); ok {
				n.set(c.Name, "")
			}
			resp, err := handler(ctx, req)
			if r, ok := resp.(recommendationIDer); ok && err == nil {
				n.set("", r.GetRecommendationId())
			}
			return resp, err
		}, func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if c, ok := access.FromContext(ss.Context()); ok {
				noteFrom(ss.Context()).set(c.Name, "")
			}
			return handler(srv, ss)
		}
}

// callLogFields are the note's fields of the call's log line.
func callLogFields(ctx context.Context) logging.Fields {
	n := noteFrom(ctx)
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var f logging.Fields
	if n.caller != "" {
		f = append(f, "caller", n.caller)
	}
	if n.recID != "" {
		f = append(f, "recommendation_id", n.recID)
	}
	return f
}

// callLogLevel is the level of a finished call's line: DEBUG when it
// succeeded, INFO when the backend was unavailable (an outage fails every
// write: the warning about it is outageLog's, rate-limited), else the
// middleware's default for the code.
func callLogLevel(code codes.Code) logging.Level {
	switch code {
	case codes.OK:
		return logging.LevelDebug
	case codes.Unavailable:
		return logging.LevelInfo
	}
	return logging.DefaultServerCodeToLevel(code)
}
