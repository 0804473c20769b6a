package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/pushsched"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/redisconn"
)

// invalidArgument is a request defect naming the field at fault.
type invalidArgument struct {
	field string
	msg   string
}

func (e *invalidArgument) Error() string { return e.field + ": " + e.msg }

func invalid(field, msg string) error { return &invalidArgument{field: field, msg: msg} }

// NotFoundError wraps err so that it maps to NotFound with its message shown
// to the caller.
func NotFoundError(err error) error { return &public{code: codes.NotFound, err: err} }

// PreconditionError wraps err so that it maps to FailedPrecondition with its
// message shown to the caller.
func PreconditionError(err error) error { return &public{code: codes.FailedPrecondition, err: err} }

// public is an error whose message is safe to show to the caller.
type public struct {
	code codes.Code
	err  error
}

func (e *public) Error() string { return e.err.Error() }
func (e *public) Unwrap() error { return e.err }

// toStatus is the ONE place where errors become gRPC statuses. Request
// defects and deliberate public errors carry their message to the caller;
// infrastructure failures map to Unavailable or DeadlineExceeded; anything
// else is Internal with a fixed message, and its cause goes to the log only.
func toStatus(ctx context.Context, log *slog.Logger, outage *outageLog, method string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var ia *invalidArgument
	var pub *public
	var over *pushsched.LimitError
	switch {
	case errors.As(err, &over):
		return retryLater(over.Error(), over.RetryAfter)
	case errors.Is(err, pushsched.ErrTooLarge):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.As(err, &ia):
		return status.Error(codes.InvalidArgument, ia.Error())
	case errors.As(err, &pub):
		return status.Error(pub.code, pub.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request cancelled")
	case errors.Is(err, catalog.ErrInvalidRules), errors.Is(err, catalog.ErrUnknownAttribute):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, catalog.ErrRulesFull), errors.Is(err, recommend.ErrNoPushProfiles),
		errors.Is(err, pushsched.ErrCampaignMismatch), errors.Is(err, pushsched.ErrNoCampaigns):
		return status.Error(codes.FailedPrecondition, err.Error())
	case isUnavailable(err):
		outage.warn(ctx, method, err)
		return status.Error(codes.Unavailable, "storage unavailable, retry later")
	}
	log.ErrorContext(ctx, "internal error", "method", method, "err", err)
	return status.Error(codes.Internal, "internal error")
}

// retryLater is ResourceExhausted with a RetryInfo detail saying when to
// retry.
func retryLater(msg string, after time.Duration) error {
	st := status.New(codes.ResourceExhausted, msg)
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(after)}); err == nil {
		return d.Err()
	}
	return st.Err()
}

// isUnavailable recognizes a storage (or network) outage, as opposed to a
// bug; the storage's client package classifies its errors.
func isUnavailable(err error) bool { return redisconn.Unavailable(err) }

// errorMapping is the interceptor that applies toStatus to every unary RPC.
func errorMapping(log *slog.Logger, outage *outageLog) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil {
			return nil, toStatus(ctx, log, outage, info.FullMethod, err)
		}
		return resp, nil
	}
}

// streamErrorMapping applies toStatus to every streaming RPC.
func streamErrorMapping(log *slog.Logger, outage *outageLog) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return toStatus(ss.Context(), log, outage, info.FullMethod, handler(srv, ss))
	}
}

// outageLogEvery is how often an outage is worth a warning line.
const outageLogEvery = 5 * time.Second

// outageLog rate-limits the warning about calls that failed because the
// backend is unavailable: during a Redis outage every write fails, and one
// line per failed call would flood the log. It writes at most one line per
// outageLogEvery, counting the failures in between in the next line.
type outageLog struct {
	log   *slog.Logger
	now   func() time.Time
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func newOutageLog(log *slog.Logger, now func() time.Time) *outageLog {
	return &outageLog{log: log, now: now, every: outageLogEvery}
}

func (o *outageLog) warn(ctx context.Context, method string, err error) {
	o.mu.Lock()
	now := o.now()
	if !o.last.IsZero() && now.Sub(o.last) < o.every {
		o.suppressed++
		o.mu.Unlock()
		return
	}
	n := o.suppressed
	o.last, o.suppressed = now, 0
	o.mu.Unlock()
	o.log.WarnContext(ctx, "backend unavailable", "method", method, "err", err, "failed_calls_not_logged_since_last_line", n)
}
