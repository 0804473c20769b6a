package profile

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lifecycle is a user's activity stage.
type Lifecycle int

// The stages. The numbering matches recsys.v1.Lifecycle.
const (
	LifecycleUnknown Lifecycle = iota // no activity times (never seen, or opted out)
	LifecycleNew                      // first seen less than SegmentConfig.NewAge ago
	LifecycleActive                   // not new, last seen less than SegmentConfig.ActiveAge ago
	LifecycleDormant                  // last seen at least SegmentConfig.ActiveAge ago
)

func (l Lifecycle) String() string {
	switch l {
	case LifecycleNew:
		return "new"
	case LifecycleActive:
		return "active"
	case LifecycleDormant:
		return "dormant"
	}
	return "unknown"
}

// ParseLifecycle reads "new", "active" or "dormant".
func ParseLifecycle(s string) (Lifecycle, error) {
	for _, l := range []Lifecycle{LifecycleNew, LifecycleActive, LifecycleDormant} {
		if s == l.String() {
			return l, nil
		}
	}
	return LifecycleUnknown, fmt.Errorf("lifecycle %q: want new, active or dormant", s)
}

// SegmentConfig holds the thresholds of segments; zero fields take the
// defaults.
type SegmentConfig struct {
	NewAge    time.Duration // first seen less than this ago: new; default 30 days
	ActiveAge time.Duration // last seen less than this ago: active; default 30 days
	// Window is how far back purchases count for spend and frequency,
	// default 90 days. Orders are kept for UserTTL (at most OrderCap), so
	// a longer window sees no more than that.
	Window time.Duration
}

// Defaults of SegmentConfig.
const (
	DefaultSegmentNewAge    = 30 * 24 * time.Hour
	DefaultSegmentActiveAge = 30 * 24 * time.Hour
	DefaultSegmentWindow    = 90 * 24 * time.Hour
)

// WithDefaults returns c with every zero field set to its default.
func (c SegmentConfig) WithDefaults() SegmentConfig {
	if c.NewAge == 0 {
		c.NewAge = DefaultSegmentNewAge
	}
	if c.ActiveAge == 0 {
		c.ActiveAge = DefaultSegmentActiveAge
	}
	if c.Window == 0 {
		c.Window = DefaultSegmentWindow
	}
	return c
}

// Validate reports a threshold that cannot work.
func (c SegmentConfig) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"new age", c.NewAge}, {"active age", c.ActiveAge}, {"window", c.Window}} {
		if f.v <= 0 {
			errs = append(errs, fmt.Errorf("segment %s must be > 0, got %v", f.name, f.v))
		}
	}
	return errors.Join(errs...)
}

// Segment is a user's segment at one moment.
type Segment struct {
	Lifecycle Lifecycle
	// Purchases counts the purchase events within the window, Spend sums
	// their spend, PerMonth is Purchases per 30 days of the window.
	Purchases int64
	Spend     float64
	PerMonth  float64
}

// Meets reports whether s is at lifecycle stage l (LifecycleUnknown: any
// stage) with at least minPerMonth purchases per 30 days and minSpend spend
// in the window: the conditions push segments and boost rules select by.
func (s Segment) Meets(l Lifecycle, minPerMonth, minSpend float64) bool {
	return (l == LifecycleUnknown || s.Lifecycle == l) && s.PerMonth >= minPerMonth && s.Spend >= minSpend
}

// Segment computes the user's segment as of now with the thresholds of c
// (defaults filled in by the caller).
func (p Profile) Segment(c SegmentConfig, now time.Time) Segment {
	var s Segment
	switch {
	case p.FirstSeen.IsZero() || p.LastSeen.IsZero():
		s.Lifecycle = LifecycleUnknown
	case now.Sub(p.FirstSeen) < c.NewAge:
		s.Lifecycle = LifecycleNew
	case now.Sub(p.LastSeen) < c.ActiveAge:
		s.Lifecycle = LifecycleActive
	default:
		s.Lifecycle = LifecycleDormant
	}
	since := now.Add(-c.Window)
	for _, o := range p.Orders {
		if o.Time.After(since) && !o.Time.After(now) {
			s.Purchases++
			s.Spend += o.Spend
		}
	}
	s.PerMonth = float64(s.Purchases) / (float64(c.Window) / float64(30*24*time.Hour))
	return s
}

// EachSeenUser calls fn with the users whose latest activity (the newest
// event time of a view, cart, purchase or custom event, as recorded) is
// within [since, until), most recent first, page users at a time, reading
// the global index of users by last activity. A zero since or until leaves
// that end open. The index holds at most Config.SeenCap users (the least
// recently active are dropped) and forgets users not seen for UserTTL,
// deleted users and opted-out users.
//
// It pages by score with the position kept between pages, so a long scan
// is consistent for users whose activity does not change meanwhile; a user
// active during the scan moves ahead of it and may be skipped. An error
// from fn stops the scan and is returned.
func (s *Store) EachSeenUser(ctx context.Context, since, until time.Time, page int, fn func(ids []string) error) error {
	if page < 1 || page > MaxLoadMany {
		return fmt.Errorf("seen users: page must be 1..%d, got %d", MaxLoadMany, page)
	}
	lo, hi := "-inf", "+inf"
	if !since.IsZero() {
		lo = ms(since)
	}
	if !until.IsZero() {
		hi = "(" + ms(until)
	}
	var offset int64 // members already returned at score hi (ties)
	var hiScore float64
	hiSet := false // hi is a returned score (not the caller's bound)
	for {
		zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, s.seen, &redis.ZRangeBy{
			Min: lo, Max: hi, Offset: offset, Count: int64(page),
		}).Result()
		if err != nil {
			return fmt.Errorf("seen users: %w", err)
		}
		if len(zs) == 0 {
			return nil
		}
		ids := make([]string, len(zs))
		for i, z := range zs {
			ids[i] = z.Member.(string)
		}
		if err := fn(ids); err != nil {
			return err
		}
		if len(zs) < page {
			return nil
		}
		// Continue at the last score, inclusive, skipping the members of
		// that score already returned (on earlier pages too, when a whole
		// page had the score the page started at).
		last := zs[len(zs)-1].Score
		ties := int64(0)
		for i := len(zs) - 1; i >= 0 && zs[i].Score == last; i-- {
			ties++
		}
		if hiSet && last == hiScore {
			offset += ties
		} else {
			offset = ties
		}
		hi, hiScore, hiSet = strconv.FormatFloat(last, 'f', -1, 64), last, true
	}
}
