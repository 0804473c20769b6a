package traindata

import (
	"fmt"
	"math"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/sparse"
)

// Data is a set of indexed events: event k is user Row[k] with item Col[k],
// strength Val[k] (from the shared event weighting) at Time[k] (any unit in
// which later is larger; only the order is used). The id tables give the
// names of the Users rows and Items columns; events need not cover them all.
type Data struct {
	Users, Items     int
	UserIDs, ItemIDs []string
	sparse.Triples
	Time []int64
}

// Len is the number of events.
func (d *Data) Len() int { return len(d.Row) }

// Validate checks that the columns have equal length, indices are in range,
// strengths are finite and >= 0, and the id tables fit.
func (d *Data) Validate() error {
	n := len(d.Row)
	switch {
	case len(d.Col) != n || len(d.Val) != n || len(d.Time) != n:
		return fmt.Errorf("data columns have lengths %d, %d, %d, %d", n, len(d.Col), len(d.Val), len(d.Time))
	case n > math.MaxInt32:
		return fmt.Errorf("data has %d events, at most %d", n, math.MaxInt32)
	case d.Users < 0 || d.Items < 0:
		return fmt.Errorf("data has %d users and %d items", d.Users, d.Items)
	case d.UserIDs != nil && len(d.UserIDs) != d.Users:
		return fmt.Errorf("%d user ids for %d users", len(d.UserIDs), d.Users)
	case d.ItemIDs != nil && len(d.ItemIDs) != d.Items:
		return fmt.Errorf("%d item ids for %d items", len(d.ItemIDs), d.Items)
	}
	for k := range n {
		u, i, v := d.Row[k], d.Col[k], d.Val[k]
		if u < 0 || int(u) >= d.Users || i < 0 || int(i) >= d.Items {
			return fmt.Errorf("event %d: user %d or item %d out of range", k, u, i)
		}
		if !(v >= 0) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("event %d: strength %v must be finite and >= 0", k, v)
		}
	}
	return nil
}

// Matrix aggregates all events into the user×item matrix ALS trains on.
func (d *Data) Matrix() (*sparse.Matrix, error) {
	return sparse.FromTriples(d.Users, d.Items, &d.Triples, d.UserIDs, d.ItemIDs)
}

// subset returns the events for which keep is true, over the same tables.
func (d *Data) subset(keep func(k int) bool) *Data {
	s := &Data{Users: d.Users, Items: d.Items, UserIDs: d.UserIDs, ItemIDs: d.ItemIDs}
	for k := range d.Row {
		if keep(k) {
			s.Append(d.Row[k], d.Col[k], d.Val[k])
			s.Time = append(s.Time, d.Time[k])
		}
	}
	return s
}

// Collector gathers events into Data with the shared weighting, through a
// sparse.Builder, so ids, validation and strengths are exactly those of the
// training matrix. It is not safe for concurrent use.
type Collector struct {
	b    *sparse.Builder
	time []int64
}

// NewCollector weighs events with w as of asOf.
func NewCollector(w event.Weighting, asOf time.Time) *Collector {
	return &Collector{b: sparse.NewBuilder(w, asOf)}
}

// Add adds an event; see sparse.Builder.Add for what is rejected.
func (c *Collector) Add(e event.Event) error {
	n := c.b.Events()
	if err := c.b.Add(e); err != nil {
		return err
	}
	if c.b.Events() > n {
		c.time = append(c.time, e.Time.UnixNano())
	}
	return nil
}

// Len is the number of events collected.
func (c *Collector) Len() int { return c.b.Events() }

// Dropped is the number of events that weighed 0 and were left out.
func (c *Collector) Dropped() int64 { return c.b.Dropped() }

// Data returns the events collected so far. It shares memory with the
// Collector; add no more events while it is in use.
func (c *Collector) Data() *Data {
	ids := c.b.UserIDs()
	items := c.b.ItemIDs()
	return &Data{Users: len(ids), Items: len(items), UserIDs: ids, ItemIDs: items, Triples: *c.b.Triples(), Time: c.time}
}
