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

// Searches whose first Top call ran together (TopBlock) answer that call
// and the next pages what each answers alone, and scanned the same cells;
// random factors (the bounds prune little, so searches take several
// rounds, with the adaptive extension) and planted ones, dot and cosine,
// with and without a filter, a k of 0 left alone.
func TestTopBlockAnswersAsTop(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	for _, planted := range []bool{false, true} {
		var y []float32
		if planted {
			y = plantedFactors(rng, 4000, 24, 40)
		} else {
			y = randomFactors(rng, 4000, 24, 0)
		}
		m := newModel(t, 24, y)
		ix, err := BuildIVF(m, IVFOptions{Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		var qs []Query
		var ks []int
		var admits []func(int32) bool
		for i := range 12 {
			r := int32(rng.IntN(4000))
			q := Query{X: m.Vector(r), Probe: 1 + i%8}
			if i%4 == 1 {
				q.Cosine, q.Norm = true, m.Norm(r)
			}
			qs = append(qs, q)
			ks = append(ks, []int{20, 7, 0, 40}[i%4])
			mod := int32(2 + i%3)
			admits = append(admits, []func(int32) bool{nil, func(r int32) bool { return r%mod != 0 }}[i%2])
		}
		block := make([]*Search, len(qs))
		for i := range block {
			block[i] = &Search{}
		}
		if err := ix.StartBlock(block, qs); err != nil {
			t.Fatal(err)
		}
		firsts := make([][]topk.Entry, len(block))
		TopBlock(block, ks, admits, firsts)
		for i, q := range qs {
			var alone Search
			if err := ix.Start(&alone, q); err != nil {
				t.Fatal(err)
			}
			var after *topk.Entry
			for page := range 3 {
				want := alone.Top(max(ks[i], 5), after, admits[i], nil)
				if page == 0 && ks[i] > 0 {
					if !slices.Equal(block[i].scanned, alone.scanned) {
						t.Errorf("planted %v, query %d: scanned cells differ from Top alone's", planted, i)
					}
					if !slices.Equal(firsts[i], want) || len(want) == 0 {
						t.Errorf("planted %v, query %d: TopBlock answered %v, Top alone %v", planted, i, firsts[i], want)
					}
				}
				if page == 0 && ks[i] <= 0 && len(firsts[i]) > 0 {
					t.Errorf("planted %v, query %d: k 0, TopBlock answered %v", planted, i, firsts[i])
				}
				got := block[i].Top(max(ks[i], 5), after, admits[i], nil)
				if !slices.Equal(got, want) {
					t.Fatalf("planted %v, query %d, page %d: rounds in a block %v, alone %v", planted, i, page, got, want)
				}
				if len(want) == 0 {
					break
				}
				after = &want[len(want)-1]
			}
		}
	}
}

// A first round scored lazily (cells scored only when a selection finds
// their bound could reach the heap's bar) answers what the same round
// scored eagerly answers, page by page, and on planted data (cells of
// other groups than the query's) scores fewer cells.
func TestLazyFirstRoundAnswersAsEager(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	for _, planted := range []bool{false, true} {
		var y []float32
		if planted {
			y = plantedFactors(rng, 5000, 32, 50)
		} else {
			y = randomFactors(rng, 5000, 32, 0)
		}
		m := newModel(t, 32, y)
		ix, err := BuildIVF(m, IVFOptions{Seed: 4})
		if err != nil {
			t.Fatal(err)
		}
		scored := func(s *Search) int {
			n := 0
			for oi, sc := range s.scanned {
				if sc && !s.pending[oi] {
					n++
				}
			}
			return n
		}
		lazyCells, eagerCells := 0, 0
		for i := range 20 {
			r := int32(rng.IntN(5000))
			q := Query{X: m.Vector(r), Probe: 8 + i%3*8}
			if i%5 == 2 {
				q.Cosine, q.Norm = true, m.Norm(r)
			}
			var admit func(int32) bool
			if i%2 == 1 {
				admit = func(r int32) bool { return r%4 != 1 }
			}
			var lazy, eager Search
			if err := ix.Start(&lazy, q); err != nil {
				t.Fatal(err)
			}
			if err := ix.Start(&eager, q); err != nil {
				t.Fatal(err)
			}
			eager.begin()
			for oi, p := range eager.pending {
				if p {
					eager.scan(oi)
				}
			}
			var after *topk.Entry
			for page := range 3 {
				want := eager.Top(10, after, admit, nil)
				got := lazy.Top(10, after, admit, nil)
				if !slices.Equal(got, want) {
					t.Fatalf("planted %v, query %d, page %d: lazy %v, eager %v", planted, i, page, got, want)
				}
				if len(want) == 0 {
					break
				}
				after = &want[len(want)-1]
			}
			if !slices.Equal(lazy.scanned, eager.scanned) {
				t.Errorf("planted %v, query %d: the cells counted scanned differ", planted, i)
			}
			lazyCells += scored(&lazy)
			eagerCells += scored(&eager)
		}
		t.Logf("planted %v: %d cells scored lazily, %d eagerly", planted, lazyCells, eagerCells)
		if lazyCells > eagerCells || (planted && lazyCells >= eagerCells) {
			t.Errorf("planted %v: %d cells scored lazily, %d eagerly", planted, lazyCells, eagerCells)
		}
	}
}
