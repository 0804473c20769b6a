package recommend

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/periodic"
	"github.com/recsys-dev/recsys/internal/profile"
)

// CatalogRange lists every catalog item (implemented by *catalog.Cache).
type CatalogRange interface {
	Range(fn func(catalog.Item) bool)
}

// PopularityReader reads the decayed popularity of given items
// (implemented by *profile.Store).
type PopularityReader interface {
	PopularityOf(ctx context.Context, ids []string) ([]float64, error)
}

var (
	_ CatalogRange     = (*catalog.Cache)(nil)
	_ PopularityReader = (*profile.Store)(nil)
)

// Defaults of ArrivalsConfig.
const (
	DefaultNewItemAge           = 14 * 24 * time.Hour
	DefaultNewItemMaxPopularity = 10
)

// ArrivalsConfig says which items count as new arrivals; zero fields get
// defaults.
type ArrivalsConfig struct {
	// MaxAge: items created (catalog created_at) less than this long ago
	// are new. Default 14 days.
	MaxAge time.Duration
	// MaxPopularity: a new item with a decayed popularity (the score
	// Popular ranks by) below this has "few interactions". Default 10,
	// about ten views' worth.
	MaxPopularity float64
	// MaxCandidates bounds the newest items considered per refresh.
	// Default 5000.
	MaxCandidates int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Arrivals keeps the new items with few interactions, by category, for the
// exploration slots of Recommend. They have no factors until the next
// retrain (or too few interactions to have good ones), so the engine places
// them by the user's category affinity instead of by score. The list is
// refreshed in the background (Run), never on the request path.
type Arrivals struct {
	cfg  ArrivalsConfig
	cat  CatalogRange
	pop  PopularityReader
	log  *slog.Logger
	sets atomic.Pointer[arrivalSet]
}

// arrivalSet is one refresh's result: per category, newest first.
type arrivalSet struct {
	byCategory map[string][]catalog.Item
	n          int
}

// NewArrivals returns an empty list; call Refresh or Run to fill it.
func NewArrivals(cfg ArrivalsConfig, cat CatalogRange, pop PopularityReader, log *slog.Logger) (*Arrivals, error) {
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultNewItemAge
	}
	if cfg.MaxPopularity == 0 {
		cfg.MaxPopularity = DefaultNewItemMaxPopularity
	}
	if cfg.MaxCandidates == 0 {
		cfg.MaxCandidates = 5000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	switch {
	case cfg.MaxAge < 0:
		return nil, fmt.Errorf("new arrivals: max age must be > 0, got %v", cfg.MaxAge)
	case !(cfg.MaxPopularity > 0) || math.IsInf(cfg.MaxPopularity, 0):
		return nil, fmt.Errorf("new arrivals: max popularity must be a finite number > 0, got %v", cfg.MaxPopularity)
	case cfg.MaxCandidates < 0:
		return nil, fmt.Errorf("new arrivals: max candidates must be > 0, got %d", cfg.MaxCandidates)
	case cat == nil || pop == nil:
		return nil, fmt.Errorf("new arrivals: catalog and popularity are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Arrivals{cfg: cfg, cat: cat, pop: pop, log: log}
	a.sets.Store(&arrivalSet{})
	return a, nil
}

// Len is the number of new items in the current list.
func (a *Arrivals) Len() int { return a.sets.Load().n }

// Refresh rebuilds the list from the catalog and the popularity counters.
func (a *Arrivals) Refresh(ctx context.Context) error {
	now := a.cfg.Now()
	cutoff := now.Add(-a.cfg.MaxAge)
	var fresh []catalog.Item
	a.cat.Range(func(it catalog.Item) bool {
		// Without a category an item cannot be placed by affinity.
		if it.Category != "" && it.CreatedAt.After(cutoff) && !it.CreatedAt.After(now) {
			fresh = append(fresh, it)
		}
		return true
	})
	slices.SortFunc(fresh, newestFirst)
	fresh = fresh[:min(len(fresh), a.cfg.MaxCandidates)]
	ids := make([]string, len(fresh))
	for i, it := range fresh {
		ids[i] = it.ID
	}
	pop, err := a.pop.PopularityOf(ctx, ids)
	if err != nil {
		return fmt.Errorf("refresh new arrivals: %w", err)
	}
	set := &arrivalSet{byCategory: map[string][]catalog.Item{}}
	for i, it := range fresh {
		if pop[i] < a.cfg.MaxPopularity {
			set.byCategory[it.Category] = append(set.byCategory[it.Category], it)
			set.n++
		}
	}
	a.sets.Store(set)
	return nil
}

func newestFirst(x, y catalog.Item) int {
	if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
		return c
	}
	return cmp.Compare(x.ID, y.ID)
}

// Run refreshes the list every interval until ctx ends. Errors are logged
// and the last list is kept.
func (a *Arrivals) Run(ctx context.Context, every time.Duration) error {
	return periodic.Run(ctx, "new arrivals refresh", every, a.log, a.Refresh)
}

// explorationSlots is how many of count slots go to new arrivals: the
// configured share, rounded down, so a share of 0.1 is 1 of 10 and none of
// 9.
func (e *Engine) explorationSlots(count int, override *float64) int {
	share := e.cfg.ExploreShare
	if override != nil {
		share = *override
	}
	if e.cfg.Arrivals == nil || !(share > 0) {
		return 0
	}
	return int(math.Floor(float64(count)*min(share, 1) + 1e-9))
}

// affinity is one category's share of a profile's weight.
type affinity struct {
	category string
	weight   float64
}

// affinities returns the user's categories by weight, heaviest first.
func (e *Engine) affinities(s *scratch, weights []profile.ItemWeight, searches []profile.SearchAffinity) []affinity {
	s.affinity = s.affinity[:0]
	if e.catalog == nil || !e.catalog.Known() {
		return nil
	}
	// Each search that matched a category weighs 1 (a view's default
	// weight).
	for _, sa := range searches {
		if sa.Attribute == catalog.AttrCategory && sa.Count > 0 {
			s.affinity = append(s.affinity, affinity{category: sa.Value, weight: sa.Count})
		}
	}
	for _, w := range weights {
		it, ok := e.catalog.Lookup(w.ItemID)
		if !ok || it.Category == "" || !(w.Weight > 0) {
			continue
		}
		i := slices.IndexFunc(s.affinity, func(a affinity) bool { return a.category == it.Category })
		if i < 0 {
			s.affinity = append(s.affinity, affinity{category: it.Category})
			i = len(s.affinity) - 1
		}
		s.affinity[i].weight += w.Weight
	}
	slices.SortFunc(s.affinity, func(x, y affinity) int {
		if c := cmp.Compare(y.weight, x.weight); c != 0 {
			return c
		}
		return cmp.Compare(x.category, y.category)
	})
	return s.affinity
}

// explore picks up to slots new arrivals for the answer: round by round,
// the newest allowed item of each category the user has affinity for,
// heaviest category first. It returns the picks; they are already counted
// in a (categories, exclusions) but not in a.items.
func (e *Engine) explore(s *scratch, fc *reqFilter, a *answer, slots int, aff []affinity) []Item {
	picks := s.explore[:0]
	if slots <= 0 || len(aff) == 0 {
		return picks
	}
	set := e.cfg.Arrivals.sets.Load()
	cutoff := fc.now.Add(-e.cfg.Arrivals.cfg.MaxAge)
	next := s.exploreNext[:0]
	for range aff {
		next = append(next, 0)
	}
	for progress := true; progress && len(picks) < slots; {
		progress = false
		for k, af := range aff {
			if len(picks) >= slots {
				break
			}
			list := set.byCategory[af.category]
			for next[k] < len(list) {
				it := list[next[k]]
				next[k]++
				if !it.CreatedAt.After(cutoff) {
					continue // no longer new
				}
				k, ok := fc.itemOK(it.ID)
				if !ok || a.overCap(k, true) {
					continue
				}
				item := Item{ItemID: it.ID, Source: SourceExploration, Reason: Reason{Kind: ReasonNewArrival, Category: k.category}}
				picks = append(picks, item)
				// Counted for the caps and kept out of later sources, but
				// placed in the answer only at the end.
				a.count(k)
				fc.exclude(it.ID)
				progress = true
				break
			}
		}
	}
	s.exploreNext = next
	s.explore = picks
	return picks
}

// placeExploration inserts the picks into items at evenly spread positions:
// pick k of n at (k+1)·count/(n+1), so 1 of 10 lands at position 5.
func placeExploration(items, picks []Item, count int) []Item {
	for k, p := range picks {
		pos := min((k+1)*count/(len(picks)+1), len(items))
		items = slices.Insert(items, pos, p)
	}
	return items
}
