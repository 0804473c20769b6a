package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/recsys-dev/recsys/internal/access"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// policy is what the server enforces for one RPC.
type policy struct {
	// roles may call the method (a caller needs one of them).
	roles access.Roles
	// deadline is the longest the server works on one call: a caller's
	// longer deadline, or none, is cut to it.
	deadline time.Duration
}

const (
	pagesOrOperator  = access.Pages | access.Operator
	eventsOrOperator = access.Events | access.Operator
	pushOrOperator   = access.Push | access.Operator
)

// methodTable is THE table of who may call what, and for how long. Every
// RPC the server registers must be in it: a method missing here is refused
// to every caller (PermissionDenied, also with authentication off), and
// TestEveryMethodIsInTheTable fails, so a new RPC cannot be forgotten.
// The operator role may call everything. Deadline caps can be overridden
// per method with Config.DeadlineCaps.
var methodTable = map[string]policy{
	// Product pages: online, latency-bound reads.
	recsysv1.RecommendationService_Recommend_FullMethodName:      {pagesOrOperator, time.Second},
	recsysv1.RecommendationService_SimilarItems_FullMethodName:   {pagesOrOperator, time.Second},
	recsysv1.RecommendationService_BoughtTogether_FullMethodName: {pagesOrOperator, time.Second},
	recsysv1.RecommendationService_RankItems_FullMethodName:      {pagesOrOperator, time.Second},
	// The push sender: server streaming, one message per user.
	recsysv1.RecommendationService_BatchRecommend_FullMethodName: {pushOrOperator, 10 * time.Minute},
	// Event producers. A user's opt-out comes from the same shop backend that
	// sends their events.
	recsysv1.EventService_RecordEvents_FullMethodName: {eventsOrOperator, 5 * time.Second},
	recsysv1.EventService_SetOptOut_FullMethodName:    {eventsOrOperator, 5 * time.Second},
	// Operators and the retraining job: profiles, deletion, catalog, models.
	recsysv1.EventService_GetProfile_FullMethodName:    {access.Operator, 5 * time.Second},
	recsysv1.EventService_DeleteUser_FullMethodName:    {access.Operator, 5 * time.Second},
	recsysv1.CatalogService_UpsertItems_FullMethodName: {access.Operator, 10 * time.Second},
	recsysv1.CatalogService_GetItems_FullMethodName:    {access.Operator, 10 * time.Second},
	// Merchandising rules: blocklist and category settings.
	recsysv1.CatalogService_SetBlocklist_FullMethodName:        {access.Operator, 5 * time.Second},
	recsysv1.CatalogService_AddToBlocklist_FullMethodName:      {access.Operator, 5 * time.Second},
	recsysv1.CatalogService_RemoveFromBlocklist_FullMethodName: {access.Operator, 5 * time.Second},
	recsysv1.CatalogService_GetBlocklist_FullMethodName:        {access.Operator, 5 * time.Second},
	recsysv1.CatalogService_UpsertCategories_FullMethodName:    {access.Operator, 5 * time.Second},
	recsysv1.CatalogService_ListCategories_FullMethodName:      {access.Operator, 5 * time.Second},
	recsysv1.CatalogService_DeclareAttributes_FullMethodName:   {access.Operator, 5 * time.Second},
	recsysv1.CatalogService_ListAttributes_FullMethodName:      {access.Operator, 5 * time.Second},
	recsysv1.CatalogService_SetBoostRules_FullMethodName:       {access.Operator, 5 * time.Second},
	recsysv1.CatalogService_GetBoostRules_FullMethodName:       {access.Operator, 5 * time.Second},
	recsysv1.ModelService_GetModel_FullMethodName:              {access.Operator, 5 * time.Second},
	recsysv1.ModelService_ListModels_FullMethodName:            {access.Operator, 10 * time.Second},
	recsysv1.ModelService_ActivateModel_FullMethodName:         {access.Operator, 15 * time.Second}, // waits up to 10 s for the switch
	recsysv1.ModelService_GetModelReport_FullMethodName:        {access.Operator, 10 * time.Second},
	// Experiments: definitions and reports.
	recsysv1.ExperimentService_CreateExperiment_FullMethodName: {access.Operator, 5 * time.Second},
	recsysv1.ExperimentService_UpdateExperiment_FullMethodName: {access.Operator, 5 * time.Second},
	recsysv1.ExperimentService_StopExperiment_FullMethodName:   {access.Operator, 5 * time.Second},
	recsysv1.ExperimentService_ListExperiments_FullMethodName:  {access.Operator, 5 * time.Second},
	recsysv1.ExperimentService_GetReport_FullMethodName:        {access.Operator, 30 * time.Second},
}

// openServices answer anyone, without credentials or rate limit: health
// (load balancers and probes carry no token) and reflection (grpcurl; it
// describes the API, which is public in the proto files anyway).
var openServices = map[string]bool{
	"grpc.health.v1.Health":                    true,
	"grpc.reflection.v1.ServerReflection":      true,
	"grpc.reflection.v1alpha.ServerReflection": true,
}

// guarded matches the calls that need a caller: everything but openServices.
var guarded = selector.MatchFunc(func(_ context.Context, cm interceptors.CallMeta) bool {
	return !openServices[cm.Service]
})

// authorizer authenticates callers (or, with authentication off, calls
// everyone access.Anonymous) and checks the method table.
type authorizer struct {
	authn *access.Authenticator // nil: authentication off
	log   *slog.Logger
}

// authenticate is the go-grpc-middleware auth function: it puts the caller
// in the context, or answers Unauthenticated (no or bad credentials) or
// PermissionDenied (a caller without a role the method needs, or a method
// missing from the table).
func (a *authorizer) authenticate(ctx context.Context) (context.Context, error) {
	method, _ := grpc.Method(ctx)
	caller := access.Anonymous
	if a.authn != nil {
		c, err := a.authn.Authenticate(ctx)
		if err != nil {
			a.log.DebugContext(ctx, "unauthenticated call", "method", method, "err", err)
			return nil, status.Error(codes.Unauthenticated, err.Error())
		}
		caller = c
	}
	p, ok := methodTable[method]
	if !ok {
		a.log.ErrorContext(ctx, "method missing from the access table, refused", "method", method)
		return nil, status.Errorf(codes.PermissionDenied, "%s is not in the server's access table", method)
	}
	if !caller.Roles.Has(p.roles) {
		a.log.WarnContext(ctx, "caller lacks the role", "method", method, "caller", caller.Name, "roles", caller.Roles.String())
		return nil, status.Errorf(codes.PermissionDenied, "caller %q (roles %s) may not call %s: it needs one of %s",
			caller.Name, caller.Roles, method, strings.ReplaceAll(p.roles.String(), "+", ", "))
	}
	return access.NewContext(ctx, caller), nil
}

// deadlineCaps resolves the cap of every method: Config.DeadlineCaps (keyed
// by full method name or by the bare method name, "Recommend"), else the
// table, else defaultUnaryCap for unary methods outside the table (health
// checks). Streaming methods outside the table (health Watch, reflection)
// are long-lived by design and have no cap.
type deadlineCaps struct {
	caps map[string]time.Duration
}

// defaultUnaryCap bounds unary RPCs that are not in the method table.
const defaultUnaryCap = 5 * time.Second

func newDeadlineCaps(overrides map[string]time.Duration) (*deadlineCaps, error) {
	d := &deadlineCaps{caps: map[string]time.Duration{}}
	for m, p := range methodTable {
		d.caps[m] = p.deadline
	}
	for k, v := range overrides {
		if v <= 0 {
			return nil, fmt.Errorf("deadline cap of %q: must be > 0, got %v", k, v)
		}
		matched := false
		for m := range methodTable {
			if m == k || m[strings.LastIndexByte(m, '/')+1:] == k {
				d.caps[m] = v
				matched = true
			}
		}
		if !matched {
			return nil, fmt.Errorf("deadline cap of %q: no such method", k)
		}
	}
	return d, nil
}

// bound returns ctx with its deadline cut to the method's cap.
func (d *deadlineCaps) bound(ctx context.Context, method string, stream bool) (context.Context, context.CancelFunc) {
	limit, ok := d.caps[method]
	if !ok {
		if stream {
			return ctx, func() {}
		}
		limit = defaultUnaryCap
	}
	if dl, has := ctx.Deadline(); has && time.Until(dl) <= limit {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, limit)
}

func (d *deadlineCaps) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, cancel := d.bound(ctx, info.FullMethod, false)
		defer cancel()
		return handler(ctx, req)
	}
}

func (d *deadlineCaps) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, cancel := d.bound(ss.Context(), info.FullMethod, true)
		defer cancel()
		return handler(srv, &ctxStream{ServerStream: ss, ctx: ctx})
	}
}

// ctxStream replaces the context of a stream.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *ctxStream) Context() context.Context { return s.ctx }
