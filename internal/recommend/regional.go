package recommend

import (
	"context"
	"sync"
	"time"

	"github.com/recsys-dev/recsys/internal/profile"
)

// RegionalSource reads a region's popular items (implemented by
// *profile.Regional).
type RegionalSource interface {
	Popular(ctx context.Context, region string, n int) ([]profile.ItemScore, error)
}

var _ RegionalSource = (*profile.Regional)(nil)

// Regional caches each region's popular items for RegionalTTL: a shopper
// in a region without a personalized answer gets them before the global
// popular items. At most maxCachedRegions lists are kept (the cache starts
// over when full); a region's list is read on the first request that finds
// it missing or stale, so a request pays one Redis round trip per region
// and RegionalTTL at most.
type Regional struct {
	src  RegionalSource
	size int
	now  func() time.Time

	mu    sync.Mutex
	lists map[string]regionalList
}

type regionalList struct {
	items []profile.ItemScore
	read  time.Time
}

// RegionalTTL is how long a region's cached list is used.
const RegionalTTL = 10 * time.Second

const maxCachedRegions = 1000

// NewRegional returns a cache of size items per region; now may be nil.
func NewRegional(src RegionalSource, size int, now func() time.Time) *Regional {
	if size <= 0 {
		size = 200
	}
	if now == nil {
		now = time.Now
	}
	return &Regional{src: src, size: size, now: now, lists: map[string]regionalList{}}
}

// List returns region's popular items, best first (nil when they cannot be
// read: the answer falls back to the global ones). Callers must not modify
// it.
func (r *Regional) List(ctx context.Context, region string) []profile.ItemScore {
	if r == nil || region == "" {
		return nil
	}
	now := r.now()
	r.mu.Lock()
	l, ok := r.lists[region]
	r.mu.Unlock()
	if ok && now.Sub(l.read) < RegionalTTL {
		return l.items
	}
	items, err := r.src.Popular(ctx, region, r.size)
	if err != nil {
		return l.items // the stale list, if any
	}
	r.mu.Lock()
	if len(r.lists) >= maxCachedRegions {
		clear(r.lists)
	}
	r.lists[region] = regionalList{items: items, read: now}
	r.mu.Unlock()
	return items
}
