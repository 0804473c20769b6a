package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"google.golang.org/grpc"

	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/pushsched"
	"github.com/recsys-dev/recsys/internal/recommend"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// Pusher picks the items of push campaigns (implemented by
// *pushsched.Scheduler, over the engine).
type Pusher interface {
	Push(ctx context.Context, req pushsched.Request, emit func(recommend.PushResult) error) error
}

// maxCampaignID bounds BatchRecommendRequest.campaign_id (bytes).
const maxCampaignID = 128

// maxHoldoutShare bounds BatchRecommendRequest.holdout_share: a holdout
// larger than the pushed group measures little more and costs sends.
const maxHoldoutShare = 0.5

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
		MaxPerBrand:    int(req.GetMaxPerBrand()),
		MaxPerSeller:   int(req.GetMaxPerSeller()),
	}
	if sel := req.GetSegment(); sel != nil {
		r.Segment = &recommend.SegmentSelector{
			Lifecycle:   profile.Lifecycle(sel.GetLifecycle()), // the numbers match
			MinPerMonth: sel.GetMinPurchasesPer_30D(),
			MinSpend:    sel.GetMinSpend(),
			MaxUsers:    int(sel.GetMaxUsers()),
		}
	}
	pr := pushsched.Request{PushRequest: r, Channel: pushsched.Channel(req.GetChannel()), // the numbers match
		Campaign: req.GetCampaignId(), HoldoutShare: req.GetHoldoutShare()}
	full := fullReasons(stream.Context())
	return s.push.Push(stream.Context(), pr, func(res recommend.PushResult) error {
		return stream.Send(&recsysv1.BatchRecommendResponse{
			UserId:           res.UserID,
			Items:            toScored(res.Items, full),
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
	if c := r.GetCount(); c != 0 { // 0: the channel's default
		if err := v.count(c); err != nil {
			return err
		}
	}
	switch ch := r.GetChannel(); ch {
	case recsysv1.PushChannel_PUSH_CHANNEL_UNSPECIFIED, recsysv1.PushChannel_PUSH_CHANNEL_APP_PUSH,
		recsysv1.PushChannel_PUSH_CHANNEL_EMAIL, recsysv1.PushChannel_PUSH_CHANNEL_SMS, recsysv1.PushChannel_PUSH_CHANNEL_OTHER:
	default:
		return invalid("channel", fmt.Sprintf("unknown value %d", int32(ch)))
	}
	if id := r.GetCampaignId(); len(id) > maxCampaignID || strings.TrimSpace(id) != id {
		return invalid("campaign_id", fmt.Sprintf("must be at most %d bytes without leading or trailing white space, got %d bytes", maxCampaignID, len(id)))
	}
	if h := r.GetHoldoutShare(); math.IsNaN(h) || h < 0 || h > maxHoldoutShare {
		return invalid("holdout_share", fmt.Sprintf("must be within 0..%v, got %v", maxHoldoutShare, h))
	} else if h > 0 && r.GetCampaignId() == "" {
		return invalid("holdout_share", "needs campaign_id (the holdout is drawn per campaign)")
	}
	if n := r.GetMaxPerBrand(); n < 0 {
		return invalid("max_per_brand", fmt.Sprintf("must be >= 0 (0: the server's default), got %d", n))
	}
	if n := r.GetMaxPerSeller(); n < 0 {
		return invalid("max_per_seller", fmt.Sprintf("must be >= 0 (0: the server's default), got %d", n))
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
