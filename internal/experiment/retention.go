package experiment

import (
	"slices"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/profile"
)

// RetentionWindows are the days after a user's first answer in an arm
// over which retention and repurchase are counted.
var RetentionWindows = []int{30, 90}

// The segments retention is counted by: a user first seen (first event)
// less than NewUserAge before their first answer in the arm, or never
// seen, is "new"; the others are "returning".
const (
	SegmentNew       = "new"
	SegmentReturning = "returning"
	NewUserAge       = 30 * 24 * time.Hour
)

// RetentionCounts are one arm's users of one segment over one window.
// Only users whose whole window has passed (Matured) are judged: Retained
// came back (a view, cart, purchase or custom event) between one day
// after their first answer and the window's end, Buyers bought in the
// window (from the first answer on), Repurchasers bought at least twice
// in it.
type RetentionCounts struct {
	Segment                                        string
	Days                                           int
	Users, Matured, Retained, Buyers, Repurchasers int64
}

// Retention accumulates an arm's RetentionCounts per segment and window.
type Retention struct {
	counts map[[2]int]*RetentionCounts // [segment index, window index]
}

var segments = []string{SegmentNew, SegmentReturning}

// Add counts one user from their profile and the time of their first
// answer in the arm (a zero first is skipped: unknown), as of now.
func (r *Retention) Add(p profile.Profile, first, now time.Time) {
	if first.IsZero() {
		return
	}
	if r.counts == nil {
		r.counts = map[[2]int]*RetentionCounts{}
	}
	seg := 0
	if !p.FirstSeen.IsZero() && p.FirstSeen.Before(first.Add(-NewUserAge)) {
		seg = 1
	}
	for wi, days := range RetentionWindows {
		k := [2]int{seg, wi}
		c := r.counts[k]
		if c == nil {
			c = &RetentionCounts{Segment: segments[seg], Days: days}
			r.counts[k] = c
		}
		c.Users++
		end := first.Add(time.Duration(days) * 24 * time.Hour)
		if end.After(now) {
			continue
		}
		c.Matured++
		back := first.Add(24 * time.Hour)
		for _, e := range p.History {
			if !e.Time.Before(back) && e.Time.Before(end) &&
				(e.Type == event.View || e.Type == event.AddToCart || e.Type == event.Purchase || e.Type == event.Custom) {
				c.Retained++
				break
			}
		}
		var orders int
		for _, o := range p.Orders {
			if !o.Time.Before(first) && o.Time.Before(end) {
				orders++
			}
		}
		if orders > 0 {
			c.Buyers++
		}
		if orders > 1 {
			c.Repurchasers++
		}
	}
}

// Counts returns the counts, new users first, then by window.
func (r *Retention) Counts() []RetentionCounts {
	out := make([]RetentionCounts, 0, len(r.counts))
	for _, c := range r.counts {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b RetentionCounts) int {
		if a.Segment != b.Segment {
			return slices.Index(segments, a.Segment) - slices.Index(segments, b.Segment)
		}
		return a.Days - b.Days
	})
	return out
}
