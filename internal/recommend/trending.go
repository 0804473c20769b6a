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
//
// Computing the trending list costs the store time in proportion to the
// items active in its short window (about a tenth of a second of Redis for
// 100,000 items, during which every profile load waits), so it is lazy: Run
// refreshes it only while answers ask for it (List).
func NewTrending(src TrendingSource, size int, log *slog.Logger) *Popular {
	p := NewPopular(trendingList{src}, size, log)
	p.lazy = true
	return p
}

// trendingList adapts a TrendingSource to the Popular cache.
type trendingList struct{ src TrendingSource }

func (t trendingList) Popular(ctx context.Context, n int) ([]profile.ItemScore, error) {
	return t.src.Trending(ctx, n)
}
