// Package recommend answers "recommended for you" and "similar items" from the
// serving model snapshot, the user's live profile and the catalog.
//
// Recommend folds the user's vector in from the profile on every request
// (iALS fold-in, mf.Model.FoldIn), scores every item with one matrix-vector
// product and keeps the best with a bounded heap; only the few rows that could
// enter the heap are checked against exclusions, the catalog and the request's
// filter (filter.go, against per-row state precomputed once per model, catalog
// and rules version). Users without usable history, users who opted out, and
// servers without a model, get popular (or trending) items.
//
// Around that core: new items get a share of exploration slots placed by
// category affinity (explore.go), a per-category cap keeps answers diverse
// (diversity.go), items shown repeatedly without a click rotate down, every
// item carries a reason (explain.go), and when the filters leave too few items
// the answer is filled from popular items under the same hard rules.
//
// The model is an immutable snapshot behind an atomic pointer: a request loads
// it once and uses that snapshot to the end, so a model swap never mixes two
// models in one answer.
package recommend

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/recsys-dev/recsys/internal/blend"
	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/coalesce"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/itemindex"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/topk"
)

// Profiles loads a user's live profile.
type Profiles interface {
	Load(ctx context.Context, userID string) (profile.Profile, error)
}

// Catalog tells which items may be shown. A catalog that was never sent
// (Known false) lets every item through. Version changes whenever the
// contents do.
type Catalog interface {
	Lookup(id string) (catalog.Item, bool)
	Known() bool
	Version() uint64
}

// Source names the path that produced an answer.
type Source int

// The answer paths.
const (
	SourceUnspecified Source = iota
	SourcePersonalized
	SourcePopular
	SourceSimilar
	SourceTrending
	SourceExploration // a new item in an exploration slot (per item only)
	SourceBoughtTogether
	SourceCallerOrder // RankItems: kept in the caller's order (per item only)
)

func (s Source) String() string {
	switch s {
	case SourcePersonalized:
		return "personalized"
	case SourcePopular:
		return "popular"
	case SourceSimilar:
		return "similar"
	case SourceTrending:
		return "trending"
	case SourceExploration:
		return "exploration"
	case SourceBoughtTogether:
		return "bought_together"
	case SourceCallerOrder:
		return "caller_order"
	}
	return "unspecified"
}

// Item is one ranked item.
type Item struct {
	ItemID string
	Score  float32
	Source Source // the path that produced this item
	Reason Reason
}

// Result is a ranked answer.
type Result struct {
	Items []Item
	// Source is the path that produced the answer (its first items).
	Source       Source
	ModelVersion string
	// Partial: fewer than the asked count passed the rules, the filter and
	// the exclusions, even after every fallback.
	Partial bool
}

// PlacementTrending is the placement that asks for trending items.
const PlacementTrending = "trending"

// Request asks for personalized items.
type Request struct {
	UserID        string
	Count         int
	Exclude       []string
	ContextItemID string // counts as a fresh view for this answer only; never returned
	Placement     string // PlacementTrending asks for trending items
	Filter        Filter
	// MaxPerCategory caps the items of one category; 0: Config's default;
	// negative: no cap.
	MaxPerCategory int
	// MaxPerBrand and MaxPerSeller cap the items of one brand or seller
	// likewise.
	MaxPerBrand, MaxPerSeller int
	// Serving settings of an experiment arm: NonPersonalized answers as
	// for a cold user (a non-personalized control); ExploreShare, when
	// set, replaces Config.ExploreShare; ColdSource, when set, replaces
	// Config.ColdSource.
	NonPersonalized bool
	ExploreShare    *float64
	ColdSource      Source
}

// SimilarRequest asks for items similar to one item.
type SimilarRequest struct {
	ItemID  string
	Count   int
	Exclude []string
	Filter  Filter // IncludePurchased has no effect (there is no user)
}

// Config tunes the engine; zero fields get defaults.
type Config struct {
	// Weighting turns profile events into strengths; it must be the one the
	// model was trained with. Default event.DefaultWeighting().
	Weighting event.Weighting
	// ContextWeight is the strength of the request's context item. Default:
	// the weight of one view.
	ContextWeight float64
	// KeepHistory lets items of the user's recent history be recommended
	// again. Off by default, matching the offline evaluation, which ranks only
	// items the user has not interacted with. Purchased items are always
	// excluded.
	KeepHistory bool
	// MaxPerCategory is the default per-category cap of an answer; 0: none.
	MaxPerCategory int
	// MaxPerBrand and MaxPerSeller are the default per-brand and per-seller
	// caps of an answer; 0: none.
	MaxPerBrand, MaxPerSeller int
	// RotateAfter rotates an item down once it was shown this many times
	// within RotateWindow without a click after them; 0 turns rotation off.
	// The profile store must keep at least this many impressions per item.
	RotateAfter  int
	RotateWindow time.Duration // default DefaultRotateWindow
	// ExploreShare is the share of an answer's slots given to new arrivals
	// (rounded down: 0.1 is 1 of 10); 0 turns exploration off. Needs
	// Arrivals.
	ExploreShare float64
	// Arrivals lists the new items with few interactions; nil: no
	// exploration.
	Arrivals *Arrivals
	// ContentInterval is the least time between two rebuilds of the
	// served model for items placed by their attributes (content.go) that
	// RunRowState starts: each costs O(items·factors) (benchmarks/README.md,
	// "Content placement refresh"). Default 1 s; negative: none.
	ContentInterval time.Duration
	// Regional is the per-region popular items a shopper in a region gets
	// before the global ones (regional.go); nil: none.
	Regional *Regional
	// Trending is the trending-items cache; nil: trending answers fall back
	// to popular items.
	Trending *Popular
	// ColdSource is what users without a personalized answer get:
	// SourcePopular (the default) or SourceTrending.
	ColdSource Source
	// Rules are the shop's blocklist and category settings; nil: none.
	Rules Rules
	// Bought reads the co-purchase lists of BoughtTogether; nil: it answers
	// from its fallbacks alone.
	Bought BoughtLists
	// PushProfiles loads users in blocks and enumerates them by activity
	// for BatchRecommend (Push); nil: Push fails with ErrNoPushProfiles.
	PushProfiles PushProfiles
	// Segments are the segment thresholds Push selects users by.
	Segments profile.SegmentConfig
	// PushDedupWindow is Push's default dedup window, default 7 days.
	PushDedupWindow time.Duration
	// PushWorkers bounds the goroutines one Push scores on, default
	// GOMAXPROCS.
	PushWorkers int
	// IndexMinItems is the least number of items from which a model is
	// searched through its partitioned index (candidates.go); 0:
	// DefaultIndexMinItems; negative: every model.
	IndexMinItems int
	// IndexProbe is how many partitions a search probes unless their
	// bounds prove the answer earlier; 0: a quarter of them.
	IndexProbe int
	// ExactScan scores every row in float32, without the index.
	ExactScan bool
	// Coalescer scores the full scan of Recommend and Similar together
	// with other concurrent requests' (internal/coalesce); nil: every
	// request scores alone.
	Coalescer *coalesce.Coalescer
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Tracer opens the spans of a request's stages (profile load, filter,
	// fold-in, scoring, selection) under the RPC's span; nil: none, at no
	// cost (see span).
	Tracer trace.Tracer
}

// ErrNoModel is returned by operations that need a model when none is loaded.
var ErrNoModel = errors.New("no model loaded")

// Engine computes answers. It is safe for concurrent use.
type Engine struct {
	cfg      Config
	profiles Profiles
	catalog  Catalog
	popular  *Popular
	model    atomic.Pointer[mf.Model]
	index    atomic.Pointer[servingIndex] // candidates.go
	blend    atomic.Pointer[servedBlend]  // the serving model's blend, if it has one
	scratch  sync.Pool                    // *scratch
	// pushFree holds the score-block buffers of every Push call together,
	// PushWorkers of them (12.8 MB each at 100K items): however many calls
	// run, at most that many blocks are scored at once and that much
	// memory is held.
	pushFree chan *pushBuffers

	rows       atomic.Pointer[rowState] // filter.go
	rowsMu     sync.Mutex               // serialises rebuilds of rows
	rowsRunner atomic.Bool              // RunRowState is keeping rows up to date

	content     atomic.Pointer[contentState] // content.go: what the served model was built from
	contentMu   sync.Mutex                   // serialises SetModel and content refreshes
	contentLast atomic.Int64                 // unix ns of the last content rebuild
}

// DefaultRotateWindow is the default Config.RotateWindow: impressions of the
// last day count for rotation.
const DefaultRotateWindow = 24 * time.Hour

// New returns an engine. cat may be nil (no catalog).
func New(cfg Config, profiles Profiles, cat Catalog, popular *Popular) (*Engine, error) {
	if cfg.Weighting == (event.Weighting{}) {
		cfg.Weighting = event.DefaultWeighting()
	}
	if err := cfg.Weighting.Validate(); err != nil {
		return nil, fmt.Errorf("recommend config: %w", err)
	}
	if cfg.ContextWeight == 0 {
		cfg.ContextWeight = cfg.Weighting.View
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RotateWindow == 0 {
		cfg.RotateWindow = DefaultRotateWindow
	}
	if cfg.ColdSource == SourceUnspecified {
		cfg.ColdSource = SourcePopular
	}
	if cfg.ContentInterval == 0 {
		cfg.ContentInterval = time.Second
	}
	if cfg.IndexMinItems == 0 {
		cfg.IndexMinItems = DefaultIndexMinItems
	}
	if cfg.PushDedupWindow == 0 {
		cfg.PushDedupWindow = DefaultPushDedupWindow
	}
	if cfg.PushWorkers <= 0 {
		cfg.PushWorkers = runtime.GOMAXPROCS(0)
	}
	cfg.Segments = cfg.Segments.WithDefaults()
	if err := cfg.Segments.Validate(); err != nil {
		return nil, fmt.Errorf("recommend config: %w", err)
	}
	switch {
	case cfg.MaxPerCategory < 0 || cfg.MaxPerBrand < 0 || cfg.MaxPerSeller < 0:
		return nil, fmt.Errorf("recommend config: max per category, brand and seller must be >= 0, got %d, %d, %d",
			cfg.MaxPerCategory, cfg.MaxPerBrand, cfg.MaxPerSeller)
	case cfg.RotateAfter < 0 || cfg.RotateWindow < 0:
		return nil, fmt.Errorf("recommend config: rotation after %d impressions within %v", cfg.RotateAfter, cfg.RotateWindow)
	case !(cfg.ExploreShare >= 0 && cfg.ExploreShare <= 1):
		return nil, fmt.Errorf("recommend config: exploration share must be within 0..1, got %v", cfg.ExploreShare)
	case cfg.IndexProbe < 0:
		return nil, fmt.Errorf("recommend config: index probe must be >= 0, got %d", cfg.IndexProbe)
	case cfg.PushDedupWindow < 0:
		return nil, fmt.Errorf("recommend config: push dedup window must be >= 0, got %v", cfg.PushDedupWindow)
	case cfg.ColdSource != SourcePopular && cfg.ColdSource != SourceTrending:
		return nil, fmt.Errorf("recommend config: cold source must be popular or trending, got %v", cfg.ColdSource)
	}
	if profiles == nil || popular == nil {
		return nil, errors.New("recommend: profiles and popular are required")
	}
	e := &Engine{cfg: cfg, profiles: profiles, catalog: cat, popular: popular,
		pushFree: make(chan *pushBuffers, cfg.PushWorkers)}
	for range cfg.PushWorkers {
		e.pushFree <- &pushBuffers{} // sized on first use
	}
	e.scratch.New = func() any { return &scratch{} }
	return e, nil
}

// SetModel makes m the serving model. Requests already running finish on the
// snapshot they started with. The model's per-row filter state, its search
// index (candidates.go) and its blend (package blend: neighbour and
// transition terms, recency) are built first, in the caller's goroutine, so
// no request waits for them. A model whose blend sections are damaged is
// refused with an error wrapping blend.ErrCorrupt, and the previous model
// keeps serving.
func (e *Engine) SetModel(m *mf.Model) error {
	e.contentMu.Lock()
	defer e.contentMu.Unlock()
	prev := e.content.Load()
	served, err := e.withContent(m) // content.go
	if err == nil {
		err = e.install(served)
	}
	if err != nil {
		e.content.Store(prev)
	}
	return err
}

// install makes m, built from the registry's model by SetModel or
// refreshContent, the serving model. The caller holds contentMu.
func (e *Engine) install(m *mf.Model) error {
	var sb *servedBlend
	if m != nil {
		b, err := blend.FromModel(m)
		switch {
		case errors.Is(err, blend.ErrNoBlend):
		case err != nil:
			return fmt.Errorf("model %s: %w", m.Version(), err)
		default:
			sb = &servedBlend{model: m, b: b}
		}
		e.rowsMu.Lock()
		e.refreshRowsLocked(m)
		e.rowsMu.Unlock()
	}
	// The blend and the index first: a request that loads the new model
	// finds them. One that loaded the previous model just before sees a
	// blend or index of another model and scores with MF alone (blendFor)
	// or scans exactly (indexFor), never a mix.
	e.blend.Store(sb)
	e.index.Store(e.buildIndex(m))
	e.model.Store(m)
	return nil
}

// servedBlend is a model's blend; requests use it only with that model.
type servedBlend struct {
	model *mf.Model
	b     *blend.Blend
}

// blendFor returns m's blend, or nil when m has none (or m is not the
// model the engine serves any more).
func (e *Engine) blendFor(m *mf.Model) *blend.Blend {
	if sb := e.blend.Load(); sb != nil && sb.model == m {
		return sb.b
	}
	return nil
}

// weighting is the event weighting of fold-in: the one the serving model was
// trained with, or the engine's own for a model that does not record it.
func (e *Engine) weighting(m *mf.Model) event.Weighting {
	if m != nil {
		if w := m.Info().Weighting; w != nil {
			// A model from before wishlist and rating events weighs them
			// with the defaults.
			return w.WithNewDefaults()
		}
	}
	return e.cfg.Weighting
}

// Model returns the serving model, or nil.
func (e *Engine) Model() *mf.Model { return e.model.Load() }

// Popular returns the engine's popular-items cache.
func (e *Engine) Popular() *Popular { return e.popular }

// scratch holds one request's buffers.
type scratch struct {
	ws          mf.Workspace
	scores      []float32
	heap        topk.Heap
	entries     []topk.Entry
	rows        []int32
	weights     []float64
	filter      reqFilter
	answer      answer
	full        []int32
	contrib     []float64
	rowTypes    []event.Type // explain: the dominant event type per s.rows entry
	affinity    []affinity
	explore     []Item
	exploreNext []int
	purchased   map[string]struct{}
	cosine      []float32 // BoughtTogether: the cart's summed unit vector
	boost       boostPlan // the shop's boost rules for this request
	search      itemindex.Search
	searching   bool // selectRows reads search, not scores
	blend       blend.Scratch
	// blended, while searching, makes selectRows rank by the blend's score
	// (blended.Top over search, with blendScratch prepared for the user).
	blended      *blend.Blend
	blendScratch *blend.Scratch
	recent       []recentRow // fold-in rows with their recency, for the blend
	// first, when ok, is the answer of the search's first page, found
	// for the block's users together (Push's searchTogether).
	first firstPage
}

// firstPage is a selection's first page of rows, found before selectRows
// asks for it: what search.Top(size, no bound, the filter's admit) answers.
type firstPage struct {
	rows []topk.Entry
	size int
	ok   bool
}

// recentRow is a fold-in row and when the user last touched it.
type recentRow struct {
	row    int32
	weight float64
	last   int64 // unix nanoseconds; the context item is newest
	id     string
}

// requestScratch returns a scratch sized for m whose filter is ready for a
// request with filter f at now (the model's row state, the catalog, the
// current rules). The caller returns it with putScratch.
func (e *Engine) requestScratch(m *mf.Model, f Filter, now time.Time) *scratch {
	n := 0
	var st *rowState
	if m != nil {
		n = m.NumItems()
		st = e.rowsFor(m)
	}
	s := e.getScratch(n)
	s.filter.reset(st, e.catalog, e.rules(), f, now)
	return s
}

func (e *Engine) getScratch(n int) *scratch {
	s := e.scratch.Get().(*scratch)
	if cap(s.scores) < n {
		s.scores = make([]float32, n)
	}
	s.scores = s.scores[:n]
	s.reset()
	return s
}

// reset empties the per-user state of s for its next request (or, in Push,
// its next user).
func (s *scratch) reset() {
	s.rows, s.weights, s.entries = s.rows[:0], s.weights[:0], s.entries[:0]
	s.searching, s.blended, s.blendScratch = false, nil, nil
	s.first.ok = false
	if s.purchased == nil || len(s.purchased) > 4096 {
		s.purchased = make(map[string]struct{})
	}
	clear(s.purchased)
}

func (e *Engine) putScratch(s *scratch) { e.scratch.Put(s) }

// Recommend returns up to req.Count items for req.UserID.
//
// The answer is built in stages, each under the hard rules (blocklist,
// availability, sale windows, member-only items), the request's filter and
// the exclusions (request, purchased, recent history, context item), which
// no stage relaxes: exploration picks and personalized items (or, for a
// cold or opted-out user and the trending placement, trending or popular
// items), then popular items, all within the per-category cap; then items
// over the cap; then items rotated down by impressions. Result.Partial says
// when even that is fewer than req.Count.
func (e *Engine) Recommend(ctx context.Context, req Request) (Result, error) {
	m := e.current()
	lctx, span := e.span(ctx, "recommend.profile_load")
	p, err := e.profiles.Load(lctx, req.UserID)
	endSpan(span, err)
	if err != nil {
		return Result{}, fmt.Errorf("load profile of %q: %w", req.UserID, err)
	}
	now := e.cfg.Now()
	_, span = e.span(ctx, "recommend.filter")
	s := e.requestScratch(m, req.Filter, now)
	defer e.putScratch(s)
	fc := &s.filter

	for _, id := range req.Exclude {
		fc.exclude(id)
	}
	if req.ContextItemID != "" {
		fc.exclude(req.ContextItemID)
	}
	weights := e.excludeForUser(s, fc, p)
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("recsys.profile.items", len(weights)),
			attribute.Int("recsys.profile.purchased", len(p.Purchased)), attribute.Bool("recsys.profile.opted_out", p.OptedOut))
	}
	span.End()

	personal := !p.OptedOut && req.Placement != PlacementTrending && !req.NonPersonalized
	a := &s.answer
	a.reset(req.Count, orDefault(req.MaxPerCategory, e.cfg.MaxPerCategory))
	a.capBrandsAndSellers(orDefault(req.MaxPerBrand, e.cfg.MaxPerBrand), orDefault(req.MaxPerSeller, e.cfg.MaxPerSeller))
	var picks []Item
	if personal {
		if slots := e.explorationSlots(req.Count, req.ExploreShare); slots > 0 {
			picks = e.explore(s, fc, a, slots, e.affinities(s, weights, p.Searches))
		}
	}
	a.want = req.Count - len(picks)

	res := Result{Source: e.cfg.ColdSource}
	if req.ColdSource == SourcePopular || req.ColdSource == SourceTrending {
		res.Source = req.ColdSource
	}
	if req.Placement == PlacementTrending {
		res.Source = SourceTrending
	}
	if m != nil {
		res.ModelVersion = m.Version()
	}
	folded := false
	if personal && m != nil {
		b := e.blendFor(m)
		_, span := e.span(ctx, "recommend.fold_in")
		x, err := e.foldIn(m, b, s, weights, req)
		if span.IsRecording() {
			span.SetAttributes(attribute.Int("recsys.fold_in.rows", len(s.rows)), attribute.Bool("recsys.fold_in.blend", b != nil))
		}
		endSpan(span, err)
		if err != nil {
			return Result{}, fmt.Errorf("fold in user %q: %w", req.UserID, err)
		}
		if folded = x != nil; folded {
			res.Source = SourcePersonalized
			// The index search (candidates.go), blended when the model
			// has a blend; boost rules for this user score every item (a
			// rule may lift any of them).
			sctx, span := e.span(ctx, "recommend.score")
			s.boost.plan(fc.boosts(), e.userSegment(p, now), m.NumItems())
			method := "index"
			if s.boost.applies() || !e.search(m, s, itemindex.Query{X: x}) {
				method = "full_scan"
				release, err := e.score(sctx, m, x, s)
				if err != nil {
					endSpan(span, err)
					return Result{}, fmt.Errorf("score items for %q: %w", req.UserID, err)
				}
				defer release()
				blendScores(b, &s.blend, s.rows, x, s.scores)
				s.boost.apply(s.scores)
			} else if b != nil {
				method = "index_blend"
				searchBlend(s, b, &s.blend, x)
				defer s.blend.Release()
			}
			if span.IsRecording() {
				span.SetAttributes(attribute.String("recsys.score.method", method), attribute.Int("recsys.model.items", m.NumItems()))
			}
			span.End()
			_, span = e.span(ctx, "recommend.select")
			e.selectRows(s, fc, a, true, SourcePersonalized)
			span.End()
		}
	}
	_, span = e.span(ctx, "recommend.fill")
	if res.Source == SourceTrending {
		e.fillList(fc, a, e.trendingList(), SourceTrending, ReasonTrending, true, true)
	}
	if rl := e.cfg.Regional.List(ctx, req.Filter.Region); len(rl) > 0 {
		e.fillList(fc, a, rl, SourcePopular, ReasonPopular, res.Source == SourcePopular && len(a.items) == 0, true)
	}
	e.fillList(fc, a, e.popular.List(), SourcePopular, ReasonPopular, res.Source == SourcePopular && len(a.items) == 0, true)
	// Soft rules last: the cap, then rotation.
	e.fillRelaxed(s, fc, a, res.Source)
	if !a.full() {
		fc.allowRotated = true
		e.fillRelaxed(s, fc, a, res.Source)
	}
	span.End()
	if folded {
		if err := e.explain(m, s, a, p, req.ContextItemID, now); err != nil {
			return Result{}, fmt.Errorf("explain answer for %q: %w", req.UserID, err)
		}
		s.boost.annotate(a)
	}
	if len(a.items) > 0 {
		res.Source = a.items[0].Source // a fallback may have answered alone
	}

	res.Items = placeExploration(slices.Clone(a.items), picks, req.Count)
	if res.Items == nil {
		res.Items = []Item{}
	}
	res.Partial = len(res.Items) < req.Count
	return res, nil
}

// score sets s.scores to the scores of query x against every item of m,
// through the coalescer when there is one (then s.scores may be a row of a
// shared block: the caller may change it but must call release, which
// gives s its own buffer back, before s is put back or rescored).
func (e *Engine) score(ctx context.Context, m *mf.Model, x []float32, s *scratch) (release func(), err error) {
	if e.cfg.Coalescer == nil {
		m.Scores(x, s.scores)
		return func() {}, nil
	}
	own := s.scores
	sc, err := e.cfg.Coalescer.Scores(ctx, m, x, own)
	if err != nil {
		return nil, err
	}
	s.scores = sc.Values
	return func() {
		s.scores = own
		sc.Release()
	}, nil
}

// fillRelaxed fills the answer without the per-category cap, from the
// sources the answer used, in the same order.
func (e *Engine) fillRelaxed(s *scratch, fc *reqFilter, a *answer, src Source) {
	if a.full() {
		return
	}
	if src == SourcePersonalized {
		e.selectRows(s, fc, a, false, SourcePersonalized)
	}
	if src == SourceTrending {
		e.fillList(fc, a, e.trendingList(), SourceTrending, ReasonTrending, true, false)
	}
	e.fillList(fc, a, e.popular.List(), SourcePopular, ReasonPopular, src == SourcePopular && len(a.items) == 0, false)
}

func (e *Engine) trendingList() []profile.ItemScore {
	if e.cfg.Trending == nil {
		return nil
	}
	return e.cfg.Trending.List()
}

// foldIn folds the user's vector in from the profile weights (plus the
// context item as a fresh view), using s.ws, s.rows and s.weights; nil when
// no profile item is known to the model. With a blend b, s.rows are the
// user's items newest first (by their latest event; the context item
// first), their strengths carry the blend's recency weighting, and they
// are what blendScores reads: the order and weights the trainer's offline
// evaluation uses (eval.Blend).
func (e *Engine) foldIn(m *mf.Model, b *blend.Blend, s *scratch, weights []profile.ItemWeight, req Request) ([]float32, error) {
	contextSeen := false
	s.recent = s.recent[:0]
	for _, w := range weights {
		if w.Weight <= 0 {
			continue // rated 3 or lower: no interest to fold in
		}
		row, ok := m.Index(w.ItemID)
		if !ok {
			continue // an item newer than the model
		}
		cw := w.Weight
		last := w.LastTime.UnixNano()
		if w.ItemID == req.ContextItemID {
			cw += e.cfg.ContextWeight
			contextSeen = true
			last = math.MaxInt64
		}
		s.recent = append(s.recent, recentRow{row: row, weight: cw, last: last, id: w.ItemID})
	}
	if !contextSeen && req.ContextItemID != "" {
		if row, ok := m.Index(req.ContextItemID); ok {
			s.recent = append(s.recent, recentRow{row: row, weight: e.cfg.ContextWeight, last: math.MaxInt64, id: req.ContextItemID})
		}
	}
	if len(s.recent) == 0 {
		return nil, nil
	}
	if b != nil {
		slices.SortFunc(s.recent, func(p, q recentRow) int {
			if c := cmp.Compare(q.last, p.last); c != 0 {
				return c
			}
			return strings.Compare(p.id, q.id)
		})
	}
	for _, r := range s.recent {
		s.rows = append(s.rows, r.row)
		s.weights = append(s.weights, r.weight)
	}
	if b != nil {
		b.RecencyWeights(s.weights)
	}
	return m.FoldIn(&s.ws, s.rows, s.weights)
}

// blendScores turns out, the MF scores of every item under x, into b's
// blended scores of the user whose fold-in rows are rows (newest first, as
// foldIn leaves them); without a blend it leaves them.
func blendScores(b *blend.Blend, bs *blend.Scratch, rows []int32, x, out []float32) {
	if b == nil {
		return
	}
	b.Prepare(bs, x, rows)
	b.Finish(bs, out)
	bs.Release()
}

// excludeForUser applies the exclusions of every answer for a user (bought
// items, items rotated down by impressions, the recent history unless
// KeepHistory) and returns the user's profile weights (none for a user who
// opted out). Recommend and BatchRecommend share it. The model, the rules,
// the clock and IncludePurchased are fc's.
func (e *Engine) excludeForUser(s *scratch, fc *reqFilter, p profile.Profile) []profile.ItemWeight {
	e.excludePurchased(s, fc, p)
	e.rotateImpressions(fc, p)
	excludeDismissed(fc, p, true)
	var weights []profile.ItemWeight
	if !p.OptedOut {
		weights = p.ItemWeights(e.weighting(fc.model()), fc.now)
	}
	if !e.cfg.KeepHistory {
		for _, w := range weights {
			if _, bought := s.purchased[w.ItemID]; !bought { // purchases follow their own rule
				fc.exclude(w.ItemID)
			}
		}
	}
	return weights
}

// excludePurchased keeps bought items out unless the request includes them
// or the item's category is repeatable and its interval has passed since
// the latest purchase. s.purchased collects every bought item, so the
// history exclusion leaves them to this rule.
func (e *Engine) excludePurchased(s *scratch, fc *reqFilter, p profile.Profile) {
	rules := fc.rules
	for _, pu := range p.Purchased {
		s.purchased[pu.ItemID] = struct{}{}
		if fc.f.IncludePurchased {
			continue
		}
		if rules != nil && len(rules.Categories) > 0 && fc.catalog != nil {
			if it, ok := fc.catalog.Lookup(pu.ItemID); ok {
				if after := rules.RepeatableAfter(it.Category); after > 0 && !fc.now.Before(pu.Time.Add(after)) {
					continue // a consumable due again
				}
			}
		}
		fc.exclude(pu.ItemID)
	}
}

// excludeDismissed leaves out the items and categories the user dismissed
// (NOT_INTERESTED) and, with rotateLow, moves the items they rated low down.
func excludeDismissed(fc *reqFilter, p profile.Profile, rotateLow bool) {
	var cats []string
	for _, d := range p.Dismissed {
		switch {
		case d.LowRating:
			if rotateLow {
				fc.rotate(d.ItemID)
			}
		case d.ItemID != "":
			fc.exclude(d.ItemID)
		default:
			cats = append(cats, d.Category)
		}
	}
	if len(cats) > 0 {
		fc.avoidCategories(cats) // for the whole request: reset restores the filter
	}
}

// rotateImpressions marks the items shown RotateAfter times within
// RotateWindow without a click since.
func (e *Engine) rotateImpressions(fc *reqFilter, p profile.Profile) {
	if e.cfg.RotateAfter <= 0 {
		return
	}
	since := fc.now.Add(-e.cfg.RotateWindow)
	for _, im := range p.Impressions {
		if im.ShownSince(since) >= e.cfg.RotateAfter {
			fc.rotate(im.ItemID)
		}
	}
}

// Similar returns up to req.Count items closest to req.ItemID by cosine
// similarity of item factors, under the hard rules and req.Filter. An item
// the model does not know gets popular items, as do the slots the filter
// leaves empty.
func (e *Engine) Similar(ctx context.Context, req SimilarRequest) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	m := e.current()
	s := e.itemAnswer(m, req.Filter, req.Count, req.Exclude, []string{req.ItemID})
	defer e.putScratch(s)
	fc, a := &s.filter, &s.answer

	res := Result{Source: SourcePopular}
	if m != nil {
		res.ModelVersion = m.Version()
		if row, ok := m.Index(req.ItemID); ok {
			res.Source = SourceSimilar
			sctx, span := e.span(ctx, "recommend.score")
			s.boost.plan(fc.boosts(), nil, m.NumItems())
			if s.boost.applies() || !e.search(m, s, itemindex.Query{X: m.Vector(row), Cosine: true, Norm: m.Norm(row)}) {
				release, err := e.score(sctx, m, m.Vector(row), s)
				if err != nil {
					endSpan(span, err)
					return Result{}, fmt.Errorf("score items similar to %q: %w", req.ItemID, err)
				}
				defer release()
				m.CosineFromDots(row, s.scores)
				s.boost.apply(s.scores)
			}
			span.End()
			_, span = e.span(ctx, "recommend.select")
			e.selectRows(s, fc, a, false, SourceSimilar)
			span.End()
			for i := range a.items {
				a.items[i].Reason = Reason{Kind: ReasonSimilar, ItemID: req.ItemID}
			}
			s.boost.annotate(a)
		}
	}
	e.fillList(fc, a, e.popular.List(), SourcePopular, ReasonPopular, res.Source == SourcePopular, false)
	if len(a.items) > 0 {
		res.Source = a.items[0].Source
	}
	a.finish(&res, req.Count)
	return res, nil
}

// itemAnswer takes a scratch for an answer of count items that does not
// depend on a user (Similar, BoughtTogether, the degraded fallback): its
// filter reset for model m (nil: none) under the hard rules and f, with
// every id of the exclude lists left out. The caller puts it back.
func (e *Engine) itemAnswer(m *mf.Model, f Filter, count int, exclude ...[]string) *scratch {
	n := 0
	var st *rowState
	if m != nil {
		n, st = m.NumItems(), e.rowsFor(m)
	}
	s := e.getScratch(n)
	s.filter.reset(st, e.catalog, e.rules(), f, e.cfg.Now())
	for _, ids := range exclude {
		for _, id := range ids {
			s.filter.exclude(id)
		}
	}
	s.answer.reset(count, 0)
	return s
}

// orDefault is a request's cap: v when set (negative: none), else def.
func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
