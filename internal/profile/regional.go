package profile

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/redisconn"
)

// Regional counts popularity per region, from events that carry one, for
// the cold-start answers of shoppers in that region. Counts are kept per
// region and day, and every key is bounded:
//
//	<prefix>:{g}:rpop:regions          ZSET region -> last event ms; regions
//	                                    without an event for Window are
//	                                    dropped, at most MaxRegions (an event
//	                                    of a further region is not counted)
//	<prefix>:{g}:rpop:<region>:<day>   ZSET item -> summed event weight of the
//	                                    day (unix seconds of its start); the
//	                                    MaxItems heaviest kept; TTL Window + 1 day
//
// Popular sums the days of the window.
type Regional struct {
	rdb     redis.UniversalClient
	base    string
	cfg     RegionalConfig
	regions string
}

// RegionalConfig bounds the regional counters; zero fields get defaults.
type RegionalConfig struct {
	Window     time.Duration // default 7 days
	MaxRegions int           // default 1000
	MaxItems   int           // per region and day, default 1000
	Weighting  event.Weighting
	Now        func() time.Time
}

// NewRegional returns the regional counters under prefix ("recsys" when
// empty).
func NewRegional(rdb redis.UniversalClient, prefix string, cfg RegionalConfig) (*Regional, error) {
	if prefix == "" {
		prefix = "recsys"
	}
	if cfg.Window == 0 {
		cfg.Window = 7 * 24 * time.Hour
	}
	if cfg.MaxRegions == 0 {
		cfg.MaxRegions = 1000
	}
	if cfg.MaxItems == 0 {
		cfg.MaxItems = 1000
	}
	if cfg.Weighting == (event.Weighting{}) {
		cfg.Weighting = event.DefaultWeighting()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Window < 24*time.Hour || cfg.MaxRegions < 1 || cfg.MaxItems < 1 {
		return nil, fmt.Errorf("regional popularity: window %v (at least a day), %d regions, %d items", cfg.Window, cfg.MaxRegions, cfg.MaxItems)
	}
	base := prefix + ":{g}:rpop:"
	return &Regional{rdb: rdb, base: base, cfg: cfg, regions: base + "regions"}, nil
}

const day = 24 * time.Hour

func (r *Regional) key(region string, dayStart time.Time) string {
	return r.base + region + ":" + strconv.FormatInt(dayStart.Unix(), 10)
}

// regionalScript adds a batch's regional counts.
//
// KEYS: the regions set, then one key per (region, day).
// ARGV: now_ms, cutoff_ms, max_regions, trim (-(cap+1)), ttl_ms, then per
// key: region, n, then n pairs increment, item.
var regionalScript = redis.NewScript(`
local regions = KEYS[1]
redis.call('ZREMRANGEBYSCORE', regions, '-inf', ARGV[2])
local p = 6
for j = 2, #KEYS do
  local region, n = ARGV[p], tonumber(ARGV[p + 1])
  p = p + 2
  if redis.call('ZSCORE', regions, region) or redis.call('ZCARD', regions) < tonumber(ARGV[3]) then
    redis.call('ZADD', regions, ARGV[1], region)
    for i = 0, n - 1 do
      redis.call('ZINCRBY', KEYS[j], ARGV[p + 2 * i], ARGV[p + 2 * i + 1])
    end
    redis.call('ZREMRANGEBYRANK', KEYS[j], 0, ARGV[4])
    redis.call('PEXPIRE', KEYS[j], ARGV[5])
  end
  p = p + 2 * n
end
return 1
`)

// Add counts the events whose region is set (regions[i] is event i's)
// and that are fresh (fresh[i]: not a duplicate; nil: all), by their base
// weight, into their region's day; events older than the window are left
// out.
func (r *Regional) Add(ctx context.Context, evs []event.Event, regions []string, fresh []bool) error {
	now := r.cfg.Now()
	type bucket struct {
		region string
		args   []any
	}
	var keys []string
	buckets := map[string]*bucket{}
	for i, e := range evs {
		if regions[i] == "" || (fresh != nil && !fresh[i]) || !e.Type.Streamed() || now.Sub(e.Time) >= r.cfg.Window {
			continue
		}
		w := r.cfg.Weighting.Base(e)
		if !(w > 0) {
			continue
		}
		k := r.key(regions[i], e.Time.UTC().Truncate(day))
		b := buckets[k]
		if b == nil {
			b = &bucket{region: regions[i]}
			buckets[k] = b
			keys = append(keys, k)
		}
		b.args = append(b.args, strconv.FormatFloat(w, 'g', -1, 64), e.ItemID)
	}
	if len(keys) == 0 {
		return nil
	}
	args := []any{strconv.FormatInt(now.UnixMilli(), 10), strconv.FormatInt(now.Add(-r.cfg.Window).UnixMilli(), 10),
		r.cfg.MaxRegions, -(r.cfg.MaxItems + 1), (r.cfg.Window + day).Milliseconds()}
	for _, k := range keys {
		b := buckets[k]
		args = append(args, b.region, len(b.args)/2)
		args = append(args, b.args...)
	}
	c := &redisconn.ScriptCall{Script: regionalScript, Keys: append([]string{r.regions}, keys...), Args: args}
	redisconn.RunScripts(ctx, r.rdb, c)
	if err := c.Cmd.Err(); err != nil {
		return fmt.Errorf("count regional popularity: %w", err)
	}
	return nil
}

// Popular returns region's n most popular items over the window, best
// first.
func (r *Regional) Popular(ctx context.Context, region string, n int) ([]ItemScore, error) {
	now := r.cfg.Now().UTC().Truncate(day)
	var keys []string
	for d := time.Duration(0); d <= r.cfg.Window; d += day {
		keys = append(keys, r.key(region, now.Add(-d)))
	}
	zs, err := r.rdb.ZUnionWithScores(ctx, redis.ZStore{Keys: keys}).Result()
	if err != nil {
		return nil, fmt.Errorf("regional popularity of %q: %w", region, err)
	}
	out := make([]ItemScore, 0, len(zs))
	for _, z := range zs {
		id, _ := z.Member.(string)
		out = append(out, ItemScore{ItemID: id, Score: z.Score})
	}
	slices.SortFunc(out, func(a, b ItemScore) int {
		return cmp.Or(cmp.Compare(b.Score, a.Score), cmp.Compare(a.ItemID, b.ItemID))
	})
	return out[:min(n, len(out))], nil
}
