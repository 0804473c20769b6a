package blend

import (
	"math"

	"github.com/recsys-dev/recsys/internal/topk"
)

// MFSearch finds a user's best rows by MF score y_jᵀx without scoring
// every item (implemented by *itemindex.Search, started for x).
type MFSearch interface {
	// Top appends the k best rows that admit accepts and that rank below
	// after (nil: no bound), best first, with their exact MF scores;
	// fewer only when fewer are admitted.
	Top(k int, after *topk.Entry, admit func(row int32) bool, dst []topk.Entry) []topk.Entry
	// Exact is row's exact MF score.
	Exact(row int32) float32
}

// Top appends to dst the k best rows by blended score that admit accepts
// (nil: all) and that rank strictly below after (nil: no bound; ranking is
// by score, then by the lower row), best first, with their blended scores
// (after Prepare with the x search was started for).
//
// The candidates are the items the sparse terms touched, all of them, and
// the best untouched items by MF score, over-fetched from search: an
// untouched item's blended score is an increasing function of its MF
// score, so once the k-th blended score found is above the blended score
// of the last untouched item fetched, no item left out can rank among the
// k. When search is exact (a flat index, or every cell probed) the answer
// is the full blend's, rows, scores and order; with a partial probe only
// untouched items can be missed, never one a neighbour or transition term
// lifted.
func (b *Blend) Top(s *Scratch, search MFSearch, k int, after *topk.Entry, admit func(row int32) bool, dst []topk.Entry) []topk.Entry {
	if k <= 0 {
		return dst
	}
	if !s.ready {
		s.touchedTop = s.touchedTop[:0]
		for _, j := range s.touched {
			s.touchedTop = append(s.touchedTop, topk.Entry{Row: j, Score: b.Score(s, j, search.Exact(j))})
		}
		s.ready = true
	}
	below := func(e topk.Entry) bool {
		return after == nil || e.Score < after.Score || (e.Score == after.Score && e.Row > after.Row)
	}
	untouched := func(j int32) bool { return !s.in[j] && (admit == nil || admit(j)) }
	h := &s.heap
	for fetch := 2*k + 16; ; fetch *= 2 {
		h.Reset(k)
		for _, e := range s.touchedTop {
			if h.Accepts(e.Score) && below(e) && (admit == nil || admit(e.Row)) {
				h.Push(e.Row, e.Score)
			}
		}
		s.mf = search.Top(fetch, nil, untouched, s.mf[:0])
		floor := float32(math.Inf(-1))
		for _, e := range s.mf {
			e.Score = b.Score(s, e.Row, e.Score)
			floor = e.Score
			if h.Accepts(e.Score) && below(e) {
				h.Push(e.Row, e.Score)
			}
		}
		if len(s.mf) < fetch {
			break // every admitted untouched item was looked at
		}
		if w, ok := h.Worst(); ok && h.Full() && w.Score > floor {
			break
		}
	}
	return h.Sorted(dst)
}
