package itemindex

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/recsys-dev/recsys/internal/topk"
)

// Searches started together (StartBlock) answer what each answers started
// alone: the same rows, scores and order, page by page, under a filter,
// for dot and cosine queries, on the partitioned and the flat index.
func TestStartBlockAnswersAsStart(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	m := newModel(t, 20, plantedFactors(rng, 3000, 20, 40))
	ivf, err := BuildIVF(m, IVFOptions{Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	admit := func(r int32) bool { return r%3 != 0 }
	for _, ix := range []*Index{ivf, Flat(m)} {
		var qs []Query
		for k := range 9 {
			r := int32(rng.IntN(3000))
			q := Query{X: m.Vector(r), Probe: 1 + k%4}
			if k%3 == 0 {
				q.Cosine, q.Norm = true, m.Norm(r)
			}
			qs = append(qs, q)
		}
		block := make([]*Search, len(qs))
		for i := range block {
			block[i] = &Search{}
		}
		if err := ix.StartBlock(block, qs); err != nil {
			t.Fatal(err)
		}
		for i, q := range qs {
			var alone Search
			if err := ix.Start(&alone, q); err != nil {
				t.Fatal(err)
			}
			var after *topk.Entry
			for page := range 3 {
				want := alone.Top(15, after, admit, nil)
				got := block[i].Top(15, after, admit, nil)
				if !slices.Equal(got, want) {
					t.Fatalf("%d cells, query %d, page %d: started in a block %v, alone %v", ix.Cells(), i, page, got, want)
				}
				after = &want[len(want)-1]
			}
		}
	}
	if err := ivf.StartBlock([]*Search{{}}, nil); err == nil {
		t.Error("a block of 1 search for 0 queries was accepted")
	}
}
