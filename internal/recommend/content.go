package recommend

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/content"
	"github.com/recsys-dev/recsys/internal/mf"
)

// Content-based vectors for new items (package content). A model with a
// "content" section is served with one more row for every catalog item it
// lacks, at the vector the item's attributes predict
// (mf.Model.WithExtraItems): the rows are scored, filtered, indexed (one
// extra cell of the index, internal/itemindex), explained and folded in like
// the trained ones, so such an item is recommended, ranked and found similar
// from the catalog sync that brought it. The registry's model stays the base:
// every catalog change that adds or changes an item the base lacks builds the
// served model again from it (refreshContent), and the next retrain gives
// the item a learned vector.

// contentState is what the served model was built from.
type contentState struct {
	base           *mf.Model    // the registry's model
	mp             *content.Map // nil: the base has no content map
	catalogVersion uint64
	ids            []string // the extra items, in row order
	vectors        []float32
}

// contentRange is the part of the catalog content placement reads; the
// engine's catalog implements it when it is a *catalog.Cache.
type contentRange interface {
	Range(fn func(catalog.Item) bool)
}

// withContent returns the model to serve for base: base itself, or base
// with rows for the catalog's items it lacks. It records the state in
// e.content. The caller holds contentMu.
func (e *Engine) withContent(base *mf.Model) (*mf.Model, error) {
	if base == nil {
		e.content.Store(nil)
		return nil, nil
	}
	mp, err := content.FromModel(base)
	switch {
	case errors.Is(err, content.ErrNoContent):
		mp = nil
	case err != nil:
		return nil, fmt.Errorf("model %s: %w", base.Version(), err)
	}
	st := &contentState{base: base, mp: mp, catalogVersion: e.catalogVersion()}
	served := base
	if mp != nil {
		st.ids, st.vectors = e.placeNew(base, mp)
		if len(st.ids) > 0 {
			if served, err = base.WithExtraItems(st.ids, st.vectors); err != nil {
				return nil, fmt.Errorf("model %s: place new items: %w", base.Version(), err)
			}
		}
	}
	e.content.Store(st)
	return served, nil
}

// placeNew returns the catalog's items that base lacks and that mp can
// place, sorted by id, with their vectors.
func (e *Engine) placeNew(base *mf.Model, mp *content.Map) ([]string, []float32) {
	cr, ok := e.catalog.(contentRange)
	if !ok || e.catalogVersion() == 0 {
		return nil, nil
	}
	var items []catalog.Item
	cr.Range(func(it catalog.Item) bool {
		if _, known := base.Index(it.ID); !known {
			items = append(items, it)
		}
		return len(items) < mf.MaxItems-base.NumItems()
	})
	slices.SortFunc(items, func(a, b catalog.Item) int { return cmp.Compare(a.ID, b.ID) })
	f := base.Factors()
	ids := make([]string, 0, len(items))
	vectors := make([]float32, 0, len(items)*f)
	v := make([]float32, f)
	for _, it := range items {
		if mp.Vector(it.Content(), v) {
			ids = append(ids, it.ID)
			vectors = append(vectors, v...)
		}
	}
	return ids, vectors
}

// contentStale reports whether the catalog changed since the served model
// was built from a base with a content map.
func (e *Engine) contentStale() bool {
	st := e.content.Load()
	return st != nil && st.mp != nil && st.catalogVersion != e.catalogVersion()
}

// refreshContent builds the served model again when the catalog changed
// since it was built and the change adds, removes or moves an extra item.
func (e *Engine) refreshContent() {
	if !e.contentStale() {
		return
	}
	e.contentMu.Lock()
	defer e.contentMu.Unlock()
	st := e.content.Load()
	if st == nil || st.mp == nil || st.catalogVersion == e.catalogVersion() {
		return
	}
	ids, vectors := e.placeNew(st.base, st.mp)
	if slices.Equal(ids, st.ids) && slices.Equal(vectors, st.vectors) {
		next := *st
		next.catalogVersion = e.catalogVersion()
		e.content.Store(&next)
		return
	}
	e.contentLast.Store(time.Now().UnixNano())
	served, err := e.withContent(st.base)
	if err != nil {
		// The base loaded with the same section before: nothing here
		// can fail but a bad extra id, which the catalog refuses.
		return
	}
	_ = e.install(served)
}

// current returns the model a request uses. Without RunRowState (which
// refreshes content placement on its ticks), a request that is the first
// to see a catalog change places the new items itself.
func (e *Engine) current() *mf.Model {
	if !e.rowsRunner.Load() && e.contentStale() {
		e.refreshContent()
	}
	return e.model.Load()
}

// The daemon's requests never rebuild: RunRowState does, at most every
// Config.ContentInterval, so a catalog that changes constantly costs at
// most one rebuild per interval.
