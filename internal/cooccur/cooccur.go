// Package cooccur provides "bought together" lists: for every item, the items
// shoppers purchased with it, computed by the retraining job from the events
// it trains on and kept in Redis for recsysd's BoughtTogether.
//
// Two items are co-purchased when one user bought both within Window of each
// other (the shop's events carry no order id, so "the same order" is "close in
// time"); a pair counts once per user however often that user bought it, so
// one bulk buyer cannot make a pair. The score of a pair is its normalized
// co-occurrence (cosine of the two items' buyer sets)
//
//	score(i, j) = count(i, j) / sqrt(count(i) · count(j))
//
// where count(i) is the number of users who bought i. A best seller co-occurs
// with everything, but its large count(i) divides its score, so it does not
// top every list. Pairs bought together by fewer than MinSupport users are
// dropped (one shared purchase is noise), and each item keeps its Cap best
// pairs.
package cooccur

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/sparse"
)

// Config tunes the computation; zero fields get the defaults.
type Config struct {
	// Window is how close in time two purchases of one user must be to count
	// as bought together. Default 24h.
	Window time.Duration
	// MinSupport is the fewest users who must have bought a pair together
	// for it to be listed. Default 2.
	MinSupport int
	// Cap is how many pairs each item keeps, best first. Default 50.
	Cap int
	// MaxPartners bounds the purchases one purchase is paired with (the next
	// ones within Window), so a user buying hundreds of items in a day adds
	// at most MaxPartners pairs per purchase, not a quadratic number.
	// Default 50.
	MaxPartners int
}

// Defaults of Config.
const (
	DefaultWindow      = 24 * time.Hour
	DefaultMinSupport  = 2
	DefaultCap         = 50
	DefaultMaxPartners = 50
	// MaxCap bounds Cap (and what a stored list may hold).
	MaxCap = 1000
)

// WithDefaults fills the zero fields.
func (c Config) WithDefaults() Config {
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.MinSupport == 0 {
		c.MinSupport = DefaultMinSupport
	}
	if c.Cap == 0 {
		c.Cap = DefaultCap
	}
	if c.MaxPartners == 0 {
		c.MaxPartners = DefaultMaxPartners
	}
	return c
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Window <= 0:
		return fmt.Errorf("co-purchase window must be > 0, got %v", c.Window)
	case c.MinSupport < 1:
		return fmt.Errorf("co-purchase minimum support must be >= 1, got %d", c.MinSupport)
	case c.Cap < 1 || c.Cap > MaxCap:
		return fmt.Errorf("co-purchase cap must be within 1..%d, got %d", MaxCap, c.Cap)
	case c.MaxPartners < 1:
		return fmt.Errorf("co-purchase max partners must be >= 1, got %d", c.MaxPartners)
	}
	return nil
}

// Entry is one item of a list.
type Entry struct {
	ItemID string
	Score  float32 // normalized co-occurrence, in (0, 1]
	Count  uint32  // users who bought both
}

// List is the bought-together list of one item, best first.
type List struct {
	ItemID  string
	Entries []Entry
}

// purchase is one purchase event of a user, by interned item.
type purchase struct {
	t    int64 // unix nanoseconds
	item int32
}

// Counter collects purchases and computes the lists. Add every event (other
// types are ignored), then call Lists once. Not safe for concurrent use.
type Counter struct {
	cfg    Config
	items  sparse.Index
	users  sparse.Index
	byUser [][]purchase // by user index
}

// NewCounter returns an empty counter.
func NewCounter(cfg Config) (*Counter, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Counter{cfg: cfg}, nil
}

// Add takes one event; only purchases count.
func (c *Counter) Add(e event.Event) {
	if e.Type != event.Purchase || e.UserID == "" || e.ItemID == "" {
		return
	}
	it := c.items.Intern(e.ItemID)
	u := c.users.Intern(e.UserID)
	if int(u) == len(c.byUser) {
		c.byUser = append(c.byUser, nil)
	}
	c.byUser[u] = append(c.byUser[u], purchase{t: e.Time.UnixNano(), item: it})
}

// pairKey packs an unordered pair, smaller item first.
func pairKey(a, b int32) uint64 {
	if a > b {
		a, b = b, a
	}
	return uint64(uint32(a))<<32 | uint64(uint32(b))
}

// Lists computes every item's list, in item id order; items without a pair
// of enough support have none.
func (c *Counter) Lists() []List {
	ids := c.items.IDs()
	buyers := make([]uint32, len(ids))   // users who bought each item
	pairs := make(map[uint64]uint32)     // users who bought each pair together
	var userPairs []uint64               // one user's pairs, deduplicated
	seen := make(map[int32]struct{}, 64) // one user's items
	window := c.cfg.Window.Nanoseconds()
	for _, ps := range c.byUser {
		slices.SortFunc(ps, func(a, b purchase) int { return cmp.Compare(a.t, b.t) })
		clear(seen)
		userPairs = userPairs[:0]
		for a, p := range ps {
			if _, dup := seen[p.item]; !dup {
				seen[p.item] = struct{}{}
				buyers[p.item]++
			}
			for b := a + 1; b < len(ps) && b-a <= c.cfg.MaxPartners && ps[b].t-p.t <= window; b++ {
				if ps[b].item != p.item {
					userPairs = append(userPairs, pairKey(p.item, ps[b].item))
				}
			}
		}
		slices.Sort(userPairs)
		for k, key := range userPairs {
			if k == 0 || key != userPairs[k-1] {
				pairs[key]++
			}
		}
	}

	// Adjacency of the pairs with enough support, in compressed rows.
	degree := make([]int32, len(ids)+1)
	for key, n := range pairs {
		if int(n) >= c.cfg.MinSupport {
			degree[key>>32+1]++
			degree[uint32(key)+1]++
		}
	}
	for i := 1; i < len(degree); i++ {
		degree[i] += degree[i-1]
	}
	type cand struct {
		item  int32
		score float32
		count uint32
	}
	adj := make([]cand, degree[len(degree)-1])
	fill := slices.Clone(degree[:len(ids)])
	for key, n := range pairs {
		if int(n) < c.cfg.MinSupport {
			continue
		}
		a, b := int32(key>>32), int32(uint32(key))
		s := float32(float64(n) / math.Sqrt(float64(buyers[a])*float64(buyers[b])))
		adj[fill[a]] = cand{b, s, n}
		fill[a]++
		adj[fill[b]] = cand{a, s, n}
		fill[b]++
	}

	order := make([]int32, len(ids))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return cmp.Compare(ids[a], ids[b]) })
	var out []List
	for _, i := range order {
		cs := adj[degree[i]:degree[i+1]]
		if len(cs) == 0 {
			continue
		}
		slices.SortFunc(cs, func(x, y cand) int {
			if x.score != y.score {
				return cmp.Compare(y.score, x.score)
			}
			return cmp.Compare(ids[x.item], ids[y.item])
		})
		cs = cs[:min(len(cs), c.cfg.Cap)]
		l := List{ItemID: ids[i], Entries: make([]Entry, len(cs))}
		for k, x := range cs {
			l.Entries[k] = Entry{ItemID: ids[x.item], Score: x.score, Count: x.count}
		}
		out = append(out, l)
	}
	return out
}
