package blend

import (
	"slices"
	"testing"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/topk"
)

// scanSearch is an exact MFSearch: every row's MF score, selected by heap.
type scanSearch struct {
	scores []float32
}

func (s *scanSearch) Exact(r int32) float32 { return s.scores[r] }

func (s *scanSearch) Top(k int, after *topk.Entry, admit func(int32) bool, dst []topk.Entry) []topk.Entry {

	h := topk.New(k)
	for j, v := range s.scores {
		e := topk.Entry{Row: int32(j), Score: v}
		if after != nil && !(v < after.Score || (v == after.Score && e.Row > after.Row)) {
			continue
		}
		if admit == nil || admit(e.Row) {
			h.Push(e.Row, v)
		}
	}
	return h.Sorted(dst)
}

// Top over an exact MF search returns the full blend's ranking: page by
// page (each page below the last row of the previous one), under an admit
// function, whatever the page size.
func TestTopIsTheFullBlendPageByPage(t *testing.T) {
	m, b := testBlend(t, weighted(1, 2, 1))
	recent := []int32{5, 11, 2, 30}
	w := []float64{1, 1, 1, 1}
	b.RecencyWeights(w)
	var ws mf.Workspace
	x, err := m.FoldIn(&ws, recent, w)
	if err != nil {
		t.Fatal(err)
	}
	mfScores := make([]float32, m.NumItems())
	m.Scores(x, mfScores)
	var s Scratch
	b.Prepare(&s, x, recent)
	defer s.Release()
	full := slices.Clone(mfScores)
	b.Finish(&s, full)
	admit := func(j int32) bool { return j%5 != 0 } // rejects some touched items too
	h := topk.New(len(full))
	for j, v := range full {
		if admit(int32(j)) {
			h.Push(int32(j), v)
		}
	}
	want := h.Sorted(nil)
	if len(s.Touched()) == 0 {
		t.Fatal("the profile touches no item: nothing tested")
	}
	for _, k := range []int{1, 3, 7, 40} {
		search := &scanSearch{scores: mfScores}
		var got []topk.Entry
		var after *topk.Entry
		for {
			page := b.Top(&s, search, k, after, admit, nil)
			got = append(got, page...)
			if len(page) < k {
				break
			}
			after = &page[len(page)-1]
		}
		if !slices.Equal(got, want) {
			t.Errorf("pages of %d: %v\nwant %v", k, got, want)
		}
	}
}
