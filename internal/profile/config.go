package profile

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

// MaxIDBytes is the longest event, user or item id Record accepts: the one
// id rule's limit (event.CheckID). It keeps a single hostile id from turning
// into a huge key or list entry.
const MaxIDBytes = event.MaxIDBytes

// Config sets key names, caps, retention and the weighting of a Store. Zero
// fields take the defaults listed with each field (see WithDefaults).
type Config struct {
	Prefix       string        // key prefix, default "recsys"; must not contain '{' or '}'
	HistoryCap   int           // recent events kept per user, default 200
	PurchasedCap int           // purchased items kept per user, default 500
	UserTTL      time.Duration // TTL of every per-user key, refreshed on each write, default 180 days
	DedupCap     int           // event ids remembered per user for idempotency, default 1000
	DedupWindow  time.Duration // how long event ids are remembered, default 48h
	// GlobalDedupCap bounds the event ids remembered for the global writes
	// (stream and popularity), default 1_000_000.
	GlobalDedupCap int
	StreamMaxLen   int64 // approximate MAXLEN of the global event stream, default 5_000_000
	// StreamMaxAge trims stream entries recorded longer ago than this
	// (XTRIM MINID ~), default 90 days. A negative value disables age
	// trimming, leaving only StreamMaxLen.
	StreamMaxAge       time.Duration
	PopularityBucket   time.Duration // bucket width of popularity counters, default 1h; >= 1s
	PopularityWindow   time.Duration // how far back buckets are kept and read, default 7 days
	PopularityHalfLife time.Duration // decay of bucket counts when read, default 24h
	// ImpressionWindow is how long impressions are remembered: the TTL of
	// a user's impression key (min with UserTTL), default 24h. The
	// recommender's rotation window should not exceed it.
	ImpressionWindow time.Duration
	// ImpressionKeep is how many of an item's newest impressions since its
	// last click are kept per user, default 3. A rotation after N
	// impressions needs ImpressionKeep >= N.
	ImpressionKeep int
	// ImpressionCap bounds the items with impressions kept per user; past
	// it the items shown longest ago are forgotten. Default 300.
	ImpressionCap int
	// TrendingWindow is the short window Trending compares with the whole
	// PopularityWindow, default 6h (a quarter of a popularity window
	// shorter than 24h); at least one bucket, at most the window.
	TrendingWindow time.Duration
	// TrendingPrior is the pseudo-rate (weight per hour) added to both
	// rates of the trend ratio, default 1: it keeps an item with a handful
	// of events from looking like a surge.
	TrendingPrior float64
	// TrendingMinWeight is the least weight an item needs in the short
	// window to trend, default 3.
	TrendingMinWeight float64
	// PushWindow is how long the items pushed to a user (event.Push) are
	// remembered, default 30 days; PushCap bounds them per user (the items
	// pushed longest ago are forgotten), default 200.
	PushWindow time.Duration
	PushCap    int
	// OrderCap bounds the purchase events kept per user for the segment's
	// spend and frequency (newest kept, within UserTTL), default 500.
	OrderCap int
	// SeenCap bounds the global index of users by last activity that
	// segment selection pages through (the least recently active are
	// dropped), default 1,000,000; users not seen for UserTTL leave it too.
	SeenCap int
	// NotInterestedTTL is how long a dismissal (event.NotInterested, or a
	// rating at or below event.LowRating) holds, default 90 days; it is
	// also the TTL of the user's dismissal key. DismissCap bounds the
	// dismissals kept per user (the oldest forgotten), default 500. The key
	// expires after min(NotInterestedTTL, UserTTL).
	NotInterestedTTL time.Duration
	DismissCap       int
	// SearchCap bounds the search affinities kept per user (the weakest
	// forgotten), default 100; they live for UserTTL.
	SearchCap int
	// Price returns an item's current unit price (0 when unknown); Record
	// uses it to store a purchase's spend. Nil: spend is always 0.
	Price     func(itemID string) float64
	Weighting event.Weighting  // default event.DefaultWeighting()
	Now       func() time.Time // clock, default time.Now; tests inject one
}

// Defaults of Config.
const (
	DefaultPrefix             = "recsys"
	DefaultHistoryCap         = 200
	DefaultPurchasedCap       = 500
	DefaultUserTTL            = 180 * 24 * time.Hour
	DefaultDedupCap           = 1000
	DefaultDedupWindow        = 48 * time.Hour
	DefaultGlobalDedupCap     = 1_000_000
	DefaultStreamMaxLen       = 5_000_000
	DefaultStreamMaxAge       = 90 * 24 * time.Hour
	DefaultPopularityBucket   = time.Hour
	DefaultPopularityWindow   = 7 * 24 * time.Hour
	DefaultPopularityHalfLife = 24 * time.Hour
	DefaultImpressionWindow   = 24 * time.Hour
	DefaultImpressionKeep     = 3
	DefaultImpressionCap      = 300
	DefaultTrendingWindow     = 6 * time.Hour
	DefaultTrendingPrior      = 1.0
	DefaultTrendingMinWeight  = 3.0
	DefaultPushWindow         = 30 * 24 * time.Hour
	DefaultPushCap            = 200
	DefaultOrderCap           = 500
	DefaultSeenCap            = 1_000_000
	DefaultNotInterestedTTL   = 90 * 24 * time.Hour
	DefaultDismissCap         = 500
	DefaultSearchCap          = 100
)

// maxPopularityBuckets bounds how many bucket keys Popular unions in one
// script call: Lua unpacks the ZUNIONSTORE arguments (two per bucket) on a
// stack of about 8000 slots, and a window/bucket typo should not make every
// read touch thousands of keys anyway.
const maxPopularityBuckets = 3000

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.HistoryCap == 0 {
		c.HistoryCap = DefaultHistoryCap
	}
	if c.PurchasedCap == 0 {
		c.PurchasedCap = DefaultPurchasedCap
	}
	if c.UserTTL == 0 {
		c.UserTTL = DefaultUserTTL
	}
	if c.DedupCap == 0 {
		c.DedupCap = DefaultDedupCap
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = DefaultDedupWindow
	}
	if c.GlobalDedupCap == 0 {
		c.GlobalDedupCap = DefaultGlobalDedupCap
	}
	if c.StreamMaxLen == 0 {
		c.StreamMaxLen = DefaultStreamMaxLen
	}
	if c.StreamMaxAge == 0 {
		c.StreamMaxAge = DefaultStreamMaxAge
	}
	if c.PopularityBucket == 0 {
		c.PopularityBucket = DefaultPopularityBucket
	}
	if c.PopularityWindow == 0 {
		c.PopularityWindow = DefaultPopularityWindow
	}
	if c.PopularityHalfLife == 0 {
		c.PopularityHalfLife = DefaultPopularityHalfLife
	}
	if c.ImpressionWindow == 0 {
		c.ImpressionWindow = DefaultImpressionWindow
	}
	if c.ImpressionKeep == 0 {
		c.ImpressionKeep = DefaultImpressionKeep
	}
	if c.ImpressionCap == 0 {
		c.ImpressionCap = DefaultImpressionCap
	}
	if c.TrendingWindow == 0 {
		// Within a short popularity window, a quarter of it (at least
		// one bucket).
		c.TrendingWindow = max(min(DefaultTrendingWindow, c.PopularityWindow/4), c.PopularityBucket)
	}
	if c.TrendingPrior == 0 {
		c.TrendingPrior = DefaultTrendingPrior
	}
	if c.TrendingMinWeight == 0 {
		c.TrendingMinWeight = DefaultTrendingMinWeight
	}
	if c.PushWindow == 0 {
		c.PushWindow = DefaultPushWindow
	}
	if c.PushCap == 0 {
		c.PushCap = DefaultPushCap
	}
	if c.OrderCap == 0 {
		c.OrderCap = DefaultOrderCap
	}
	if c.SeenCap == 0 {
		c.SeenCap = DefaultSeenCap
	}
	if c.NotInterestedTTL == 0 {
		c.NotInterestedTTL = DefaultNotInterestedTTL
	}
	if c.DismissCap == 0 {
		c.DismissCap = DefaultDismissCap
	}
	if c.SearchCap == 0 {
		c.SearchCap = DefaultSearchCap
	}
	if c.Weighting == (event.Weighting{}) {
		c.Weighting = event.DefaultWeighting()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first setting that cannot work. Call it on a config
// with defaults applied.
func (c Config) Validate() error {
	var errs []error
	if strings.ContainsAny(c.Prefix, "{}") {
		// The user's id must be the only hash tag in a per-user key.
		errs = append(errs, fmt.Errorf("prefix %q must not contain '{' or '}'", c.Prefix))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"history cap", int64(c.HistoryCap)},
		{"purchased cap", int64(c.PurchasedCap)},
		{"dedup cap", int64(c.DedupCap)},
		{"global dedup cap", int64(c.GlobalDedupCap)},
		{"stream max length", c.StreamMaxLen},
		{"impression keep", int64(c.ImpressionKeep)},
		{"impression cap", int64(c.ImpressionCap)},
		{"push cap", int64(c.PushCap)},
		{"order cap", int64(c.OrderCap)},
		{"seen cap", int64(c.SeenCap)},
		{"dismiss cap", int64(c.DismissCap)},
		{"search cap", int64(c.SearchCap)},
	} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("%s must be >= 1, got %d", f.name, f.v))
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"user TTL", c.UserTTL},
		{"dedup window", c.DedupWindow},
		{"popularity window", c.PopularityWindow},
		{"popularity half-life", c.PopularityHalfLife},
		{"impression window", c.ImpressionWindow},
		{"push window", c.PushWindow},
		{"not-interested TTL", c.NotInterestedTTL},
	} {
		// Redis expiries have millisecond resolution.
		if f.v < time.Millisecond {
			errs = append(errs, fmt.Errorf("%s must be >= 1ms, got %v", f.name, f.v))
		}
	}
	if c.PopularityBucket < time.Second {
		// Bucket keys are named by their start in Unix seconds.
		errs = append(errs, fmt.Errorf("popularity bucket must be >= 1s, got %v", c.PopularityBucket))
	} else if c.PopularityWindow >= c.PopularityBucket {
		if n := bucketCount(c.PopularityWindow, c.PopularityBucket); n > maxPopularityBuckets {
			errs = append(errs, fmt.Errorf("popularity window %v / bucket %v = %d buckets, more than %d",
				c.PopularityWindow, c.PopularityBucket, n, maxPopularityBuckets))
		}
	} else {
		errs = append(errs, fmt.Errorf("popularity window %v must be >= the bucket width %v", c.PopularityWindow, c.PopularityBucket))
	}
	if c.PopularityBucket >= time.Second && (c.TrendingWindow < c.PopularityBucket || c.TrendingWindow > c.PopularityWindow) {
		errs = append(errs, fmt.Errorf("trending window %v must be at least the bucket width %v and at most the popularity window %v",
			c.TrendingWindow, c.PopularityBucket, c.PopularityWindow))
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"trending prior", c.TrendingPrior}, {"trending min weight", c.TrendingMinWeight}} {
		if !(f.v > 0) || math.IsInf(f.v, 0) {
			errs = append(errs, fmt.Errorf("%s must be a finite number > 0, got %v", f.name, f.v))
		}
	}
	if err := c.Weighting.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("weighting: %w", err))
	}
	if c.Now == nil {
		errs = append(errs, errors.New("clock (Now) is nil"))
	}
	return errors.Join(errs...)
}

// bucketCount is how many buckets cover the window.
func bucketCount(window, bucket time.Duration) int64 {
	return int64((window + bucket - 1) / bucket)
}
