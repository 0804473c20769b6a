package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	"github.com/recsys-dev/recsys/internal/recommend"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// Recommender produces ranked answers (implemented by *recommend.Engine).
type Recommender interface {
	Recommend(ctx context.Context, req recommend.Request) (recommend.Result, error)
	Similar(ctx context.Context, itemID string, count int, exclude []string) (recommend.Result, error)
}

type recommendationService struct {
	recsysv1.UnimplementedRecommendationServiceServer
	rec     Recommender
	degrade *degradation
	srv     *Server
}

func (s *recommendationService) Recommend(ctx context.Context, req *recsysv1.RecommendRequest) (*recsysv1.RecommendResponse, error) {
	r := recommend.Request{
		UserID:        req.GetUserId(),
		Count:         int(req.GetCount()),
		Exclude:       req.GetExcludeItemIds(),
		ContextItemID: req.GetContext().GetContextItemId(),
	}
	res, err := s.rec.Recommend(ctx, r)
	degraded := false
	if err != nil {
		if !s.degrade.canDegrade(ctx, err) {
			return nil, err
		}
		res, degraded = s.degrade.recommend(ctx, r, err), true
	}
	return &recsysv1.RecommendResponse{
		Items:            toScored(res.Items),
		ModelVersion:     res.ModelVersion,
		Source:           toSource(res.Source),
		RecommendationId: newRecommendationID(),
		Degraded:         degraded,
	}, nil
}

func (s *recommendationService) SimilarItems(ctx context.Context, req *recsysv1.SimilarItemsRequest) (*recsysv1.SimilarItemsResponse, error) {
	res, err := s.rec.Similar(ctx, req.GetItemId(), int(req.GetCount()), req.GetExcludeItemIds())
	if err != nil {
		return nil, err
	}
	return &recsysv1.SimilarItemsResponse{
		Items:            toScored(res.Items),
		ModelVersion:     res.ModelVersion,
		Source:           toSource(res.Source),
		RecommendationId: newRecommendationID(),
		Degraded:         !s.srv.BackendUp(),
	}, nil
}

func toScored(items []recommend.Item) []*recsysv1.ScoredItem {
	out := make([]*recsysv1.ScoredItem, len(items))
	for i, it := range items {
		out[i] = &recsysv1.ScoredItem{ItemId: it.ItemID, Score: it.Score}
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
	}
	return recsysv1.Source_SOURCE_UNSPECIFIED
}

// newRecommendationID returns 128 random bits in hex, unique per answer.
func newRecommendationID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}
