package server

import (
	"context"
	"errors"
	"fmt"
	"math"

	"google.golang.org/grpc"

	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/recommend"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// Pusher picks the items of push campaigns (implemented by
// *recommend.Engine).
type Pusher interface {
	Push(ctx context.Context, req recommend.PushRequest, emit func(recommend.PushResult) error) error
}

var _ Pusher = (*recommend.Engine)(nil)

// maxSegmentUsers bounds SegmentSelector.max_users.
const maxSegmentUsers = 1_000_000

func (s *recommendationService) BatchRecommend(req *recsysv1.BatchRecommendRequest, stream grpc.ServerStreamingServer[recsysv1.BatchRecommendResponse]) error {
	if s.push == nil {
		return PreconditionError(errors.New("batch recommendations are not configured on this server"))
	}
	r := recommend.PushRequest{
		UserIDs:        req.GetUserIds(),
		Count:          int(req.GetCount()),
		HasMinScore:    req.MinScore != nil,
		MinScore:       req.GetMinScore(),
		DedupWindow:    req.GetDedupWindow().AsDuration(), // unset: 0, the server's default
		Filter:         fromProtoFilter(req.GetFilter()),
		Exclude:        req.GetExcludeItemIds(),
		MaxPerCategory: int(req.GetMaxPerCategory()),
	}
	if sel := req.GetSegment(); sel != nil {
		r.Segment = &recommend.SegmentSelector{
			Lifecycle:   profile.Lifecycle(sel.GetLifecycle()), // the numbers match
			MinPerMonth: sel.GetMinPurchasesPer_30D(),
			MinSpend:    sel.GetMinSpend(),
			MaxUsers:    int(sel.GetMaxUsers()),
		}
	}
	return s.push.Push(stream.Context(), r, func(res recommend.PushResult) error {
		return stream.Send(&recsysv1.BatchRecommendResponse{
			UserId:           res.UserID,
			Items:            toScored(res.Items),
			EmptyReason:      recsysv1.PushEmptyReason(res.Empty), // the numbers match
			ModelVersion:     res.ModelVersion,
			RecommendationId: newRecommendationID(),
		})
	})
}

// batchRecommend checks a BatchRecommendRequest.
func (v *validator) batchRecommend(r *recsysv1.BatchRecommendRequest) error {
	switch {
	case len(r.GetUserIds()) > 0 && r.GetSegment() != nil:
		return invalid("segment", "must not be set together with user_ids (exactly one of them)")
	case len(r.GetUserIds()) == 0 && r.GetSegment() == nil:
		return invalid("user_ids", "exactly one of user_ids and segment must be set")
	}
	if err := v.ids("user_ids", r.GetUserIds(), v.l.MaxPushUsers, false); err != nil {
		return err
	}
	if err := v.count(r.GetCount()); err != nil {
		return err
	}
	if r.MinScore != nil {
		if m := float64(r.GetMinScore()); math.IsNaN(m) || math.IsInf(m, 0) {
			return invalid("min_score", fmt.Sprintf("must be a finite number, got %v", m))
		}
	}
	if d := r.GetDedupWindow(); d != nil {
		if err := d.CheckValid(); err != nil {
			return invalid("dedup_window", err.Error())
		}
		if x := d.AsDuration(); x < 0 || x > profile.DefaultPushWindow {
			return invalid("dedup_window", fmt.Sprintf("must be within 0..%v (how long pushes are kept), got %v", profile.DefaultPushWindow, x))
		}
	}
	if err := v.ids("exclude_item_ids", r.GetExcludeItemIds(), v.l.MaxExclude, false); err != nil {
		return err
	}
	if n := r.GetMaxPerCategory(); n < 0 {
		return invalid("max_per_category", fmt.Sprintf("must be >= 0 (0: the server's default), got %d", n))
	}
	if sel := r.GetSegment(); sel != nil {
		switch l := sel.GetLifecycle(); l {
		case recsysv1.Lifecycle_LIFECYCLE_UNSPECIFIED, recsysv1.Lifecycle_LIFECYCLE_NEW,
			recsysv1.Lifecycle_LIFECYCLE_ACTIVE, recsysv1.Lifecycle_LIFECYCLE_DORMANT:
		default:
			return invalid("segment.lifecycle", fmt.Sprintf("unknown value %d", int32(l)))
		}
		if x := sel.GetMinPurchasesPer_30D(); !finiteNonNegative(x) {
			return invalid("segment.min_purchases_per_30d", fmt.Sprintf("must be a finite number >= 0, got %v", x))
		}
		if x := sel.GetMinSpend(); !finiteNonNegative(x) {
			return invalid("segment.min_spend", fmt.Sprintf("must be a finite number >= 0, got %v", x))
		}
		if n := sel.GetMaxUsers(); n < 0 || n > maxSegmentUsers {
			return invalid("segment.max_users", fmt.Sprintf("must be within 0..%d (0: all), got %d", maxSegmentUsers, n))
		}
	}
	return v.filter("filter.", r.GetFilter())
}
