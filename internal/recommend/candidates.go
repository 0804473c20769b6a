package recommend

import (
	"slices"

	"github.com/recsys-dev/recsys/internal/blend"
	"github.com/recsys-dev/recsys/internal/itemindex"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/topk"
)

// DefaultIndexMinItems is the least number of items from which a model is
// searched through the partitioned (IVF) index; smaller models are searched
// by scoring every row from the quantized codes, which is exact.
const DefaultIndexMinItems = 200_000

// The candidate search. Every model gets an itemindex.Index when it is set
// (SetModel): a flat one (every row scored from 8-bit codes, the best
// re-ranked exactly, so answers are the float32 scan's bit for bit) below
// Config.IndexMinItems, a partitioned one from there. selectRows asks it for
// the best rows that pass the filter, page by page; Recommend, Similar,
// BoughtTogether and Push use it. Config.ExactScan turns it off: every row
// is then scored in float32 (mf.Model.Scores) as before.

// servingIndex pairs a model with its index. SetModel stores it before the
// model, so a request that loads a model finds its index, or (during a
// swap) finds an index for another model and scans exactly.
type servingIndex struct {
	ix    *itemindex.Index
	probe int
}

// buildIndex builds the index a model is served with, or nil with
// ExactScan.
func (e *Engine) buildIndex(m *mf.Model) *servingIndex {
	if e.cfg.ExactScan || m == nil {
		return nil
	}
	if e.cfg.IndexMinItems < 0 || m.NumItems() >= e.cfg.IndexMinItems {
		// The artifact's "ivf" section, or cells built now (an artifact
		// from before the section).
		if ix, err := itemindex.ForModel(m); err == nil {
			return &servingIndex{ix: ix, probe: e.cfg.IndexProbe}
		}
	}
	return &servingIndex{ix: itemindex.Flat(m), probe: e.cfg.IndexProbe}
}

// indexFor returns the index of m, or nil when m has none (yet).
func (e *Engine) indexFor(m *mf.Model) *servingIndex {
	si := e.index.Load()
	if si == nil || si.ix.Model() != m {
		return nil
	}
	return si
}

// scanDot puts every row's score y·x in s.scores, without the index.
func scanDot(m *mf.Model, s *scratch, x []float32) {
	if len(s.scores) != m.NumItems() { // a Push slot without a score block
		s.scores = make([]float32, m.NumItems())
	}
	s.searching = false
	m.Scores(x, s.scores)
}

// prepare starts a search of q, or, without an index (or for a query it
// refuses), calls scan to fill s.scores.
func (e *Engine) prepare(m *mf.Model, s *scratch, q itemindex.Query, scan func()) {
	if !e.search(m, s, q) {
		scan()
	}
}

// search starts a search of m's index for q in s and reports whether it
// did: false without an index or for a query it refuses (not finite).
func (e *Engine) search(m *mf.Model, s *scratch, q itemindex.Query) bool {
	s.searching = false
	if si := e.indexFor(m); si != nil {
		q.Probe = si.probe
		if si.ix.Start(&s.search, q) == nil {
			s.searching = true
		}
	}
	return s.searching
}

// searchBlend makes the started search of s rank by b's blended score for
// the user whose vector is x and whose fold-in rows are s.rows (newest
// first): candidates are the index's best by MF score, over-fetched, and
// every item the neighbour and transition terms touch (blend.Blend.Top).
// bs is prepared here; the caller releases it after the selection.
func searchBlend(s *scratch, b *blend.Blend, bs *blend.Scratch, x []float32) {
	b.Prepare(bs, x, s.rows)
	s.blended, s.blendScratch = b, bs
}

// topRows appends the best size rows that admit accepts and that rank below
// bound (when hasBound), best first: from the index search, or from the
// scores of every row.
func topRows(s *scratch, size int, bound topk.Entry, hasBound bool, admit func(int32) bool) []topk.Entry {
	if s.searching {
		var after *topk.Entry
		if hasBound {
			after = &bound
		}
		if s.blended != nil {
			return s.blended.Top(s.blendScratch, &s.search, size, after, admit, s.entries[:0])
		}
		if s.first.ok && !hasBound && size == s.first.size {
			s.first.ok = false // the first page, found already (searchTogether)
			return append(s.entries[:0], s.first.rows...)
		}
		return s.search.Top(size, after, admit, s.entries[:0])
	}
	h := &s.heap
	h.Reset(size)
	for i, sc := range s.scores {
		if !h.Accepts(sc) {
			continue
		}
		r := int32(i)
		if hasBound && !(sc < bound.Score || (sc == bound.Score && r > bound.Row)) {
			continue
		}
		if !admit(r) {
			continue
		}
		h.Push(r, sc)
	}
	return h.Sorted(s.entries[:0])
}

// admitter returns the admit function of selectRows: the filter, and no
// category listed in *full.
func admitter(fc *reqFilter, full *[]int32) func(int32) bool {
	return func(r int32) bool {
		if !fc.rowOK(r) {
			return false
		}
		return len(*full) == 0 || !slices.Contains(*full, fc.st.category[r])
	}
}
