package recommend

import (
	"context"
	"log/slog"

	"github.com/recsys-dev/recsys/internal/profile"
)

// TrendingSource reads the trending items (implemented by *profile.Store).
type TrendingSource interface {
	Trending(ctx context.Context, n int) ([]profile.ItemScore, error)
}

// NewTrending returns an in-process cache of the size most trending items,
// refreshed like the popular list (Refresh, Run), so trending answers need
// no Redis round trip.
func NewTrending(src TrendingSource, size int, log *slog.Logger) *Popular {
	return NewPopular(trendingList{src}, size, log)
}

// trendingList adapts a TrendingSource to the Popular cache.
type trendingList struct{ src TrendingSource }

func (t trendingList) Popular(ctx context.Context, n int) ([]profile.ItemScore, error) {
	return t.src.Trending(ctx, n)
}
