// Package recommend answers "recommended for you" and "similar items" from the
// serving model snapshot, the user's live profile and the catalog.
//
// Recommend folds the user's vector in from the profile on every request
// (iALS fold-in, mf.Model.FoldIn), scores every item with one matrix-vector
// product and keeps the best with a bounded heap; only the few rows that could
// enter the heap are checked against exclusions and the catalog. Users without
// usable history, and servers without a model, get popular items.
//
// The model is an immutable snapshot behind an atomic pointer: a request loads
// it once and uses that snapshot to the end, so a model swap never mixes two
// models in one answer.
package recommend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/topk"
)

// Profiles loads a user's live profile.
type Profiles interface {
	Load(ctx context.Context, userID string) (profile.Profile, error)
}

// Catalog tells which items may be shown. A catalog that was never sent
// (Known false) lets every item through.
type Catalog interface {
	Lookup(id string) (catalog.Item, bool)
	Known() bool
}

// Source names the path that produced an answer.
type Source int

// The answer paths.
const (
	SourceUnspecified Source = iota
	SourcePersonalized
	SourcePopular
	SourceSimilar
)

func (s Source) String() string {
	switch s {
	case SourcePersonalized:
		return "personalized"
	case SourcePopular:
		return "popular"
	case SourceSimilar:
		return "similar"
	}
	return "unspecified"
}

// Item is one ranked item.
type Item struct {
	ItemID string
	Score  float32
}

// Result is a ranked answer.
type Result struct {
	Items        []Item
	Source       Source
	ModelVersion string
}

// Request asks for personalized items.
type Request struct {
	UserID        string
	Count         int
	Exclude       []string
	ContextItemID string // counts as a fresh view for this answer only; never returned
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
	// Now is the clock; default time.Now.
	Now func() time.Time
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
	scratch  sync.Pool // *scratch
}

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
	if profiles == nil || popular == nil {
		return nil, errors.New("recommend: profiles and popular are required")
	}
	e := &Engine{cfg: cfg, profiles: profiles, catalog: cat, popular: popular}
	e.scratch.New = func() any { return &scratch{} }
	return e, nil
}

// SetModel makes m the serving model. Requests already running finish on the
// snapshot they started with.
func (e *Engine) SetModel(m *mf.Model) { e.model.Store(m) }

// Model returns the serving model, or nil.
func (e *Engine) Model() *mf.Model { return e.model.Load() }

// Popular returns the engine's popular-items cache.
func (e *Engine) Popular() *Popular { return e.popular }

// scratch holds one request's buffers.
type scratch struct {
	ws      mf.Workspace
	scores  []float32
	heap    topk.Heap
	entries []topk.Entry
	rows    []int32
	weights []float64
	exclude map[string]struct{}
}

func (e *Engine) getScratch(n int) *scratch {
	s := e.scratch.Get().(*scratch)
	if cap(s.scores) < n {
		s.scores = make([]float32, n)
	}
	s.scores = s.scores[:n]
	if s.exclude == nil {
		s.exclude = make(map[string]struct{})
	}
	clear(s.exclude)
	s.rows, s.weights, s.entries = s.rows[:0], s.weights[:0], s.entries[:0]
	return s
}

func (e *Engine) putScratch(s *scratch) {
	if len(s.exclude) > 4096 {
		s.exclude = nil // do not keep a huge map alive
	}
	e.scratch.Put(s)
}

// Recommend returns up to req.Count items for req.UserID.
func (e *Engine) Recommend(ctx context.Context, req Request) (Result, error) {
	m := e.model.Load()
	p, err := e.profiles.Load(ctx, req.UserID)
	if err != nil {
		return Result{}, fmt.Errorf("load profile of %q: %w", req.UserID, err)
	}
	now := e.cfg.Now()

	n := 0
	if m != nil {
		n = m.NumItems()
	}
	s := e.getScratch(n)
	defer e.putScratch(s)

	for _, id := range req.Exclude {
		s.exclude[id] = struct{}{}
	}
	for _, pu := range p.Purchased {
		s.exclude[pu.ItemID] = struct{}{}
	}
	if req.ContextItemID != "" {
		s.exclude[req.ContextItemID] = struct{}{}
	}

	weights := p.ItemWeights(e.cfg.Weighting, now)
	if !e.cfg.KeepHistory {
		for _, w := range weights {
			s.exclude[w.ItemID] = struct{}{}
		}
	}

	if m == nil {
		return e.popularResult(req.Count, s.exclude, ""), nil
	}
	contextSeen := false
	for _, w := range weights {
		row, ok := m.Index(w.ItemID)
		if !ok {
			continue // an item newer than the model
		}
		cw := w.Weight
		if w.ItemID == req.ContextItemID {
			cw += e.cfg.ContextWeight
			contextSeen = true
		}
		s.rows = append(s.rows, row)
		s.weights = append(s.weights, cw)
	}
	if !contextSeen && req.ContextItemID != "" {
		if row, ok := m.Index(req.ContextItemID); ok {
			s.rows = append(s.rows, row)
			s.weights = append(s.weights, e.cfg.ContextWeight)
		}
	}
	if len(s.rows) == 0 {
		return e.popularResult(req.Count, s.exclude, m.Version()), nil
	}
	x, err := m.FoldIn(&s.ws, s.rows, s.weights)
	if err != nil {
		return Result{}, fmt.Errorf("fold in user %q: %w", req.UserID, err)
	}
	m.Scores(x, s.scores)
	items := e.top(m, s, req.Count)
	res := Result{Items: items, Source: SourcePersonalized, ModelVersion: m.Version()}
	if len(items) < req.Count {
		res.Items = e.fillPopular(items, req.Count, s.exclude, false)
	}
	return res, nil
}

// Similar returns up to count items closest to itemID by cosine similarity of
// item factors. An item the model does not know gets popular items.
func (e *Engine) Similar(ctx context.Context, itemID string, count int, exclude []string) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	m := e.model.Load()
	n := 0
	if m != nil {
		n = m.NumItems()
	}
	s := e.getScratch(n)
	defer e.putScratch(s)
	for _, id := range exclude {
		s.exclude[id] = struct{}{}
	}
	s.exclude[itemID] = struct{}{}
	if m == nil {
		return e.popularResult(count, s.exclude, ""), nil
	}
	row, ok := m.Index(itemID)
	if !ok {
		return e.popularResult(count, s.exclude, m.Version()), nil
	}
	m.Cosine(row, s.scores)
	items := e.top(m, s, count)
	res := Result{Items: items, Source: SourceSimilar, ModelVersion: m.Version()}
	if len(items) < count {
		res.Items = e.fillPopular(items, count, s.exclude, false)
	}
	return res, nil
}

// top selects the best count rows of s.scores that pass the exclusions and
// the catalog. Only rows that could enter the heap are checked.
func (e *Engine) top(m *mf.Model, s *scratch, count int) []Item {
	h := &s.heap
	h.Reset(count)
	checkCatalog := e.catalog != nil && e.catalog.Known()
	for i, sc := range s.scores {
		if !h.Accepts(sc) {
			continue
		}
		id := m.ItemID(int32(i))
		if !e.allowed(id, s.exclude, checkCatalog) {
			continue
		}
		h.Push(int32(i), sc)
	}
	s.entries = h.Sorted(s.entries[:0])
	items := make([]Item, len(s.entries))
	for i, en := range s.entries {
		items[i] = Item{ItemID: m.ItemID(en.Row), Score: en.Score}
	}
	return items
}

func (e *Engine) allowed(id string, exclude map[string]struct{}, checkCatalog bool) bool {
	if _, ex := exclude[id]; ex {
		return false
	}
	if checkCatalog {
		if it, ok := e.catalog.Lookup(id); ok && !it.Available {
			return false
		}
	}
	return true
}

func (e *Engine) popularResult(count int, exclude map[string]struct{}, version string) Result {
	return Result{Items: e.fillPopular(nil, count, exclude, true), Source: SourcePopular, ModelVersion: version}
}

// fillPopular appends popular items that pass the filters and are not in
// items yet, until there are count items. Filler after model-scored items
// gets score 0 (popularity counts are not comparable with model scores);
// a purely popular answer keeps the decayed popularity as its score.
func (e *Engine) fillPopular(items []Item, count int, exclude map[string]struct{}, popularScores bool) []Item {
	checkCatalog := e.catalog != nil && e.catalog.Known()
	have := make(map[string]struct{}, len(items))
	for _, it := range items {
		have[it.ItemID] = struct{}{}
	}
	for _, p := range e.popular.List() {
		if len(items) >= count {
			break
		}
		if _, dup := have[p.ItemID]; dup || !e.allowed(p.ItemID, exclude, checkCatalog) {
			continue
		}
		score := float32(0)
		if popularScores {
			score = float32(p.Score)
		}
		items = append(items, Item{ItemID: p.ItemID, Score: score})
	}
	if items == nil {
		items = []Item{}
	}
	return items
}
