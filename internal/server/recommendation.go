package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/recsys-dev/recsys/internal/access"
	"github.com/recsys-dev/recsys/internal/experiment"
	"github.com/recsys-dev/recsys/internal/recommend"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// Recommender produces ranked answers (implemented by *recommend.Engine).
type Recommender interface {
	Recommend(ctx context.Context, req recommend.Request) (recommend.Result, error)
	Similar(ctx context.Context, req recommend.SimilarRequest) (recommend.Result, error)
	Rank(ctx context.Context, req recommend.RankRequest) (recommend.RankResult, error)
}

// BoughtRecommender answers BoughtTogether (implemented by
// *recommend.Engine).
type BoughtRecommender interface {
	BoughtTogether(ctx context.Context, req recommend.BoughtRequest) (recommend.Result, error)
}

type recommendationService struct {
	recsysv1.UnimplementedRecommendationServiceServer
	rec     Recommender
	bought  BoughtRecommender // nil: BoughtTogether answers FailedPrecondition
	push    Pusher            // nil: BatchRecommend answers FailedPrecondition
	degrade *degradation
	srv     *Server
	answers *answerRecorder
	running RunningExperiments // may be nil: no experiments
	// serving is the current model; armModels the versions arms name
	// (may be nil: arms get the current model).
	serving   ServingModel
	armModels ArmModels
	log       *slog.Logger
	armWarned atomic.Int64 // Unix ns of the last warning of recommenderFor
}

// recommenderFor returns what answers an arm's users: the engine of the
// model version the arm names, or the current model's (no version, the
// version is the current one, or it cannot be loaded: the answer then
// carries the current version, which is what the counters count).
func (s *recommendationService) recommenderFor(ctx context.Context, arm experiment.Arm) Recommender {
	v := arm.ModelVersion
	if v == "" || s.armModels == nil {
		return s.rec
	}
	if m := s.serving.Model(); m != nil && m.Version() == v {
		return s.rec
	}
	rec, err := s.armModels.Recommender(ctx, v)
	if err != nil {
		if now := time.Now().UnixNano(); ctx.Err() == nil && now-s.armWarned.Load() > int64(10*time.Second) {
			s.armWarned.Store(now) // at most one warning per 10 s: a broken version would log per request
			s.log.WarnContext(ctx, "arm's model version unavailable; answering with the current model", "arm", arm.Name, "version", v, "err", err)
		}
		return s.rec
	}
	return rec
}

func (s *recommendationService) Recommend(ctx context.Context, req *recsysv1.RecommendRequest) (*recsysv1.RecommendResponse, error) {
	r := recommend.Request{
		UserID:         req.GetUserId(),
		Count:          int(req.GetCount()),
		Exclude:        req.GetExcludeItemIds(),
		ContextItemID:  req.GetContext().GetContextItemId(),
		Placement:      req.GetContext().GetPlacement(),
		Filter:         fromProtoFilter(req.GetFilter()),
		MaxPerCategory: int(req.GetMaxPerCategory()),
		MaxPerBrand:    int(req.GetMaxPerBrand()),
		MaxPerSeller:   int(req.GetMaxPerSeller()),
	}
	r.Filter.Region = req.GetContext().GetRegion()
	xp, arm, inXP := armFor(s.running, r.Placement, r.UserID)
	rec := s.rec
	if inXP {
		applyArm(&r, arm)
		rec = s.recommenderFor(ctx, arm)
	}
	res, err := rec.Recommend(ctx, r)
	degraded := false
	if err != nil {
		if !s.degrade.canDegrade(ctx, err) {
			return nil, err
		}
		res, degraded = s.degrade.recommend(ctx, r, err), true
	}
	s.degrade.metrics.Answer("Recommend", res.Source)
	id := newRecommendationID()
	out := &recsysv1.RecommendResponse{
		Items:            toScored(res.Items, fullReasons(ctx)),
		ModelVersion:     res.ModelVersion,
		Source:           toSource(res.Source),
		RecommendationId: id,
		Partial:          res.Partial,
		Degraded:         degraded,
	}
	if inXP {
		out.Experiment, out.Arm = xp.Name, arm.Name
	}
	s.answers.record(id, r.UserID, r.Placement, out.Experiment, out.Arm, res)
	return out, nil
}

// fromProtoFilter converts a validated filter; nil is the zero Filter.
func fromProtoFilter(f *recsysv1.Filter) recommend.Filter {
	if f == nil {
		return recommend.Filter{}
	}
	out := recommend.Filter{
		IncludeCategories:  f.GetIncludeCategories(),
		ExcludeCategories:  f.GetExcludeCategories(),
		IncludeUnavailable: f.GetAvailability() == recsysv1.Availability_AVAILABILITY_INCLUDE_UNAVAILABLE,
		MemberTier:         f.GetMemberTier(),
		IncludePurchased:   f.GetIncludePurchased(),
	}
	if f.MinPrice != nil || f.MaxPrice != nil {
		out.Price = &recommend.PriceRange{Min: f.GetMinPrice(), Max: math.Inf(1)}
		if f.MaxPrice != nil {
			out.Price.Max = f.GetMaxPrice()
		}
	}
	return out
}

func (s *recommendationService) SimilarItems(ctx context.Context, req *recsysv1.SimilarItemsRequest) (*recsysv1.SimilarItemsResponse, error) {
	res, err := s.rec.Similar(ctx, recommend.SimilarRequest{
		ItemID:  req.GetItemId(),
		Count:   int(req.GetCount()),
		Exclude: req.GetExcludeItemIds(),
		Filter:  fromProtoFilter(req.GetFilter()),
	})
	if err != nil {
		return nil, err
	}
	s.degrade.metrics.Answer("SimilarItems", res.Source)
	id := newRecommendationID()
	s.answers.recordItemPage(id, orDefault(req.GetPlacement(), similarPlacement), res)
	return &recsysv1.SimilarItemsResponse{
		Items:            toScored(res.Items, fullReasons(ctx)),
		ModelVersion:     res.ModelVersion,
		Source:           toSource(res.Source),
		RecommendationId: id,
		Partial:          res.Partial,
		Degraded:         !s.srv.BackendUp(),
	}, nil
}

// BoughtTogether answers from the co-purchase lists, or, when they cannot
// be read for want of Redis, degraded from the fallbacks alone (similar
// items from the serving model, popular items).
func (s *recommendationService) BoughtTogether(ctx context.Context, req *recsysv1.BoughtTogetherRequest) (*recsysv1.BoughtTogetherResponse, error) {
	if s.bought == nil {
		return nil, PreconditionError(errors.New("this server has no bought-together engine"))
	}
	r := recommend.BoughtRequest{
		ItemIDs: req.GetItemIds(),
		Count:   int(req.GetCount()),
		Exclude: req.GetExcludeItemIds(),
		Filter:  fromProtoFilter(req.GetFilter()),
	}
	res, err := s.bought.BoughtTogether(ctx, r)
	degraded := false
	if err != nil {
		if ctx.Err() != nil || !isUnavailable(err) {
			return nil, err
		}
		s.degrade.count("BoughtTogether", err)
		r.WithoutLists, degraded = true, true
		if res, err = s.bought.BoughtTogether(ctx, r); err != nil {
			return nil, err
		}
	}
	s.degrade.metrics.Answer("BoughtTogether", res.Source)
	id := newRecommendationID()
	s.answers.recordItemPage(id, orDefault(req.GetPlacement(), boughtPlacement), res)
	return &recsysv1.BoughtTogetherResponse{
		Items:            toScored(res.Items, fullReasons(ctx)),
		ModelVersion:     res.ModelVersion,
		Source:           toSource(res.Source),
		RecommendationId: id,
		Partial:          res.Partial,
		Degraded:         degraded || !s.srv.BackendUp(),
	}, nil
}

// RankItems orders the caller's candidates for the user; when the profile
// store cannot be read it answers degraded, in the unknown order.
func (s *recommendationService) RankItems(ctx context.Context, req *recsysv1.RankItemsRequest) (*recsysv1.RankItemsResponse, error) {
	r := recommend.RankRequest{
		UserID:        req.GetUserId(),
		ItemIDs:       req.GetItemIds(),
		ContextItemID: req.GetContext().GetContextItemId(),
		Filter:        fromProtoFilter(req.GetFilter()),
	}
	if req.GetUnknownOrder() == recsysv1.UnknownOrder_UNKNOWN_ORDER_POPULARITY {
		r.Unknown = recommend.ByPopularity
	}
	r.Filter.IncludePurchased = false // no effect: RankItems drops nothing for a purchase
	r.Filter.Region = req.GetContext().GetRegion()
	res, err := s.rec.Rank(ctx, r)
	degraded := false
	if err != nil {
		if !s.degrade.canDegrade(ctx, err) {
			return nil, err
		}
		s.degrade.count("RankItems", err)
		r.WithoutProfile, degraded = true, true
		if res, err = s.rec.Rank(ctx, r); err != nil {
			return nil, err
		}
	}
	s.degrade.metrics.Answer("RankItems", res.Source)
	id := newRecommendationID()
	s.answers.record(id, r.UserID, req.GetContext().GetPlacement(), "", "", recommend.Result{Items: res.Items, ModelVersion: res.ModelVersion, Source: res.Source})
	dropped := make([]*recsysv1.DroppedItem, len(res.Dropped))
	for i, d := range res.Dropped {
		dropped[i] = &recsysv1.DroppedItem{ItemId: d.ItemID, Reason: toDropReason(d.Why)}
	}
	return &recsysv1.RankItemsResponse{
		Items:            toScored(res.Items, fullReasons(ctx)),
		Dropped:          dropped,
		ModelVersion:     res.ModelVersion,
		Source:           toSource(res.Source),
		RecommendationId: id,
		Degraded:         degraded,
	}, nil
}

func toDropReason(v recommend.Verdict) recsysv1.DropReason {
	switch v {
	case recommend.Blocked:
		return recsysv1.DropReason_DROP_REASON_BLOCKED
	case recommend.Unavailable:
		return recsysv1.DropReason_DROP_REASON_UNAVAILABLE
	case recommend.MemberOnly:
		return recsysv1.DropReason_DROP_REASON_MEMBER_ONLY
	case recommend.OutOfWindow:
		return recsysv1.DropReason_DROP_REASON_OUT_OF_WINDOW
	case recommend.Filtered:
		return recsysv1.DropReason_DROP_REASON_FILTERED
	case recommend.NotInRegion:
		return recsysv1.DropReason_DROP_REASON_NOT_IN_REGION
	}
	return recsysv1.DropReason_DROP_REASON_UNSPECIFIED
}

// fullReasons tells whether the caller may see an explanation whole: the
// event type and score contribution describe the user's history, which
// only the operator role may read (GetProfile is operator-only too). Other
// callers get what a page renders ("because you viewed X"): the reason's
// kind, item id, category and the shop's rules. A server without
// authentication shows everything.
func fullReasons(ctx context.Context) bool {
	c, ok := access.FromContext(ctx)
	return !ok || c.Roles&access.Operator != 0
}

func toScored(items []recommend.Item, full bool) []*recsysv1.ScoredItem {
	out := make([]*recsysv1.ScoredItem, len(items))
	for i, it := range items {
		out[i] = &recsysv1.ScoredItem{ItemId: it.ItemID, Score: it.Score, Source: toSource(it.Source), Reason: toReason(it.Reason, full)}
	}
	return out
}

// toReason converts r; without full it leaves out the event type and the
// contribution (see fullReasons).
func toReason(r recommend.Reason, full bool) *recsysv1.Reason {
	if r.Kind == recommend.ReasonUnspecified {
		return nil
	}
	out := &recsysv1.Reason{ItemId: r.ItemID, Category: r.Category, BoostRules: r.BoostRules, BoostAdjustment: r.BoostAdjustment}
	if full {
		out.Contribution = r.Contribution
	}
	switch r.Kind {
	case recommend.ReasonProfileItem:
		out.Kind = recsysv1.ReasonKind_REASON_KIND_PROFILE_ITEM
		if full {
			out.EventType = recsysv1.EventType(r.EventType) // the numbers match
		}
	case recommend.ReasonPopular:
		out.Kind = recsysv1.ReasonKind_REASON_KIND_POPULAR
	case recommend.ReasonTrending:
		out.Kind = recsysv1.ReasonKind_REASON_KIND_TRENDING
	case recommend.ReasonNewArrival:
		out.Kind = recsysv1.ReasonKind_REASON_KIND_NEW_ARRIVAL
	case recommend.ReasonBoughtTogether:
		out.Kind = recsysv1.ReasonKind_REASON_KIND_BOUGHT_TOGETHER
	case recommend.ReasonSimilar:
		out.Kind = recsysv1.ReasonKind_REASON_KIND_SIMILAR
	}
	return out
}

func toSource(s recommend.Source) recsysv1.Source {
	switch s {
	case recommend.SourcePersonalized:
		return recsysv1.Source_SOURCE_PERSONALIZED
	case recommend.SourcePopular:
		return recsysv1.Source_SOURCE_POPULAR
	case recommend.SourceSimilar:
		return recsysv1.Source_SOURCE_SIMILAR
	case recommend.SourceTrending:
		return recsysv1.Source_SOURCE_TRENDING
	case recommend.SourceExploration:
		return recsysv1.Source_SOURCE_EXPLORATION
	case recommend.SourceBoughtTogether:
		return recsysv1.Source_SOURCE_BOUGHT_TOGETHER
	case recommend.SourceCallerOrder:
		return recsysv1.Source_SOURCE_CALLER_ORDER
	}
	return recsysv1.Source_SOURCE_UNSPECIFIED
}

// newRecommendationID returns 128 random bits in hex, unique per answer.
func newRecommendationID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}
