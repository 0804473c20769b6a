package itemindex

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/topk"
)

// kernels are the kernels this machine can run, the portable one first.
func kernels() []kernelKind {
	ks := []kernelKind{kernelGo}
	for _, k := range []kernelKind{kernelAVX2, kernelVNNI} {
		if k <= bestKernel() {
			ks = append(ks, k)
		}
	}
	return ks
}

func newModel(t testing.TB, f int, factors []float32) *mf.Model {
	t.Helper()
	ids := make([]string, len(factors)/f)
	for i := range ids {
		ids[i] = "i" + strconv.Itoa(i)
	}
	m, err := mf.New(mf.Info{Hyper: mf.Hyperparameters{Factors: f, Regularization: 0.1, Alpha: 1}}, ids, factors)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// randomFactors draws n×f values; every zeroEvery-th row is zero, and rows
// get norms spread over two orders of magnitude (as popular and rare items).
func randomFactors(rng *rand.Rand, n, f, zeroEvery int) []float32 {
	y := make([]float32, n*f)
	for i := range n {
		if zeroEvery > 0 && i%zeroEvery == 0 {
			continue
		}
		s := math.Exp(rng.NormFloat64())
		for j := range f {
			y[i*f+j] = float32(rng.NormFloat64() * 0.1 * s)
		}
	}
	return y
}

func TestKernelsMatchIntegerReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for _, f := range []int{1, 7, 16, 31, 32, 33, 64, 65, 100, 128, 200} {
		stride := strideFor(f)
		n := 37
		codes := make([]uint8, n*stride)
		for i := range n {
			row := randomFactors(rng, 1, f, 0)
			if i == 3 {
				clear(row)
			}
			if i == 5 { // the extremes: every code ±127
				for j := range row {
					row[j] = float32(1 - 2*(j%2))
				}
			}
			quantizeRow(row, codes[i*stride:(i+1)*stride])
		}
		x := randomFactors(rng, 1, f, 0)
		var q query
		q.set(x, stride)
		want := make([]int32, n)
		for i := range n {
			for j := range stride {
				want[i] += int32(codes[i*stride+j]) * int32(q.codes[j])
			}
		}
		for _, k := range kernels() {
			for _, rows := range []int{0, 1, n} {
				got := make([]int32, rows)
				dots(k, codes[:rows*stride], stride, &q, got)
				if !slices.Equal(got, want[:rows]) {
					t.Errorf("f=%d kernel %v, %d rows: got %v, want %v", f, k, rows, got, want[:rows])
				}
			}
		}
	}
}

func TestQuantizedDotNearFloat(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for _, f := range []int{1, 10, 64, 129} {
		m := newModel(t, f, randomFactors(rng, 50, f, 7))
		ix := Flat(m)
		x := randomFactors(rng, 1, f, 0)
		var s Search
		if err := ix.Start(&s, Query{X: x}); err != nil {
			t.Fatal(err)
		}
		s.scan(0)
		for p := range m.NumItems() {
			exact := m.Score(x, int32(p))
			if a := s.approx[p]; math.IsNaN(float64(a)) || abs32(a-exact) > s.eps {
				t.Errorf("f=%d row %d: approx %v, exact %v, bound %v", f, p, a, exact, s.eps)
			}
			if sc := ix.scale[p]; math.IsNaN(float64(sc)) || sc < 0 {
				t.Errorf("f=%d row %d: scale %v", f, p, sc)
			}
		}
	}
}

// bruteTop is the float32 scan's answer: Scores (or Cosine) then the heap.
func bruteTop(m *mf.Model, x []float32, cosRow int32, k int, after *topk.Entry, admit func(int32) bool) []topk.Entry {
	scores := make([]float32, m.NumItems())
	if cosRow >= 0 {
		m.Cosine(cosRow, scores)
	} else {
		m.Scores(x, scores)
	}
	h := topk.New(k)
	for i, sc := range scores {
		r := int32(i)
		if after != nil && !(sc < after.Score || (sc == after.Score && r > after.Row)) {
			continue
		}
		if admit == nil || admit(r) {
			h.Push(r, sc)
		}
	}
	return h.Sorted(nil)
}

func TestFlatSearchIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, tc := range []struct{ n, f int }{{1, 8}, {2, 3}, {500, 16}, {3000, 64}, {1000, 33}} {
		m := newModel(t, tc.f, randomFactors(rng, tc.n, tc.f, 11))
		ix := Flat(m)
		for _, k := range kernels() {
			ix.kernel = k
			checkExact(t, ix, m, rng, tc.n, false)
			checkExact(t, ix, m, rng, tc.n, true)
		}
	}
}

func checkExact(t *testing.T, ix *Index, m *mf.Model, rng *rand.Rand, n int, cosine bool) {
	t.Helper()
	var s Search
	for trial := range 6 {
		x := randomFactors(rng, 1, m.Factors(), 0)
		cosRow := int32(-1)
		if cosine {
			cosRow = int32(rng.IntN(n))
			x = m.Vector(cosRow)
		}
		if trial == 0 && !cosine {
			x = make([]float32, m.Factors()) // zero query: every score 0
		}
		k := []int{1, 5, 20, n + 3}[trial%4]
		var admit func(int32) bool
		if trial%2 == 1 {
			admit = func(r int32) bool { return r%3 != 0 }
		}
		if err := ix.Start(&s, Query{X: x, Cosine: cosine, Norm: normOf(m, cosRow), Probe: ix.Cells()}); err != nil {
			t.Fatal(err)
		}
		got := s.Top(k, nil, admit, nil)
		want := bruteTop(m, x, cosRow, k, nil, admit)
		if !slices.Equal(got, want) {
			t.Fatalf("n=%d f=%d kernel %v cosine %v k=%d: got %v, want %v", n, m.Factors(), ix.kernel, cosine, k, got, want)
		}
		// The next page below the last entry, from the same search.
		if len(got) > 0 {
			after := got[len(got)-1]
			got2 := s.Top(k, &after, admit, nil)
			want2 := bruteTop(m, x, cosRow, k, &after, admit)
			if !slices.Equal(got2, want2) {
				t.Fatalf("n=%d kernel %v cosine %v page 2: got %v, want %v", n, ix.kernel, cosine, got2, want2)
			}
		}
	}
}

func normOf(m *mf.Model, r int32) float32 {
	if r < 0 {
		return 0
	}
	return m.Norm(r)
}

func TestStartRejectsBadQuery(t *testing.T) {
	m := newModel(t, 4, make([]float32, 8))
	ix := Flat(m)
	var s Search
	for _, x := range [][]float32{{1, 2, 3}, {1, float32(math.NaN()), 0, 0}, {float32(math.Inf(1)), 0, 0, 0}} {
		if err := ix.Start(&s, Query{X: x}); err == nil {
			t.Errorf("Start(%v) accepted", x)
		}
	}
}

// TestScoresMatchPortableLoop checks the fused scoring (the VNNI kernel
// does 16 rows at a time when the stride is a multiple of 64) against the
// portable kernel and loop, bit for bit, with and without the inverse
// norms, for row counts around the kernel's block.
func TestScoresMatchPortableLoop(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, f := range []int{16, 64, 100, 128, 200} {
		stride := strideFor(f)
		const n = 75
		codes := make([]uint8, n*stride)
		scale, invn := make([]float32, n), make([]float32, n)
		for i := range n {
			row := randomFactors(rng, 1, f, 0)
			if i == 17 {
				clear(row)
			}
			scale[i] = quantizeRow(row, codes[i*stride:(i+1)*stride])
			var nr float64
			for _, v := range row {
				nr += float64(v) * float64(v)
			}
			if nr > 0 {
				invn[i] = float32(1 / math.Sqrt(nr))
			}
		}
		var q query
		q.set(randomFactors(rng, 1, f, 0), stride)
		mul := q.scale * 0.37
		raw := make([]int32, n)
		for _, inv := range [][]float32{nil, invn} {
			for _, rows := range []int{0, 1, 15, 16, 17, 32, 48, n} {
				want := make([]float32, rows)
				wantMax := float32(math.Inf(-1))
				dotsGo(codes[:rows*stride], stride, q.codes, raw[:rows])
				for i, d := range raw[:rows] {
					if inv != nil {
						want[i] = float32(d-q.corr) * scale[i] * inv[i] * mul
					} else {
						want[i] = float32(d-q.corr) * scale[i] * mul
					}
					wantMax = max(wantMax, want[i])
				}
				for _, k := range kernels() {
					got := make([]float32, rows)
					var in []float32
					if inv != nil {
						in = inv[:rows]
					}
					gotMax := scores(k, codes[:rows*stride], stride, &q, mul, scale[:rows], in, got, make([]int32, rows))
					if !slices.Equal(got, want) || gotMax != wantMax {
						t.Errorf("f=%d kernel %v, %d rows, cosine %v: got %v (max %v), want %v (max %v)", f, k, rows, inv != nil, got, gotMax, want, wantMax)
					}
				}
			}
		}
	}
}

// TestSortCellsOrdersAsComparison checks the radix sort of the probe
// order against the comparison it replaces (score descending, then the
// lower cell), on scores with ties, both zeros, negatives, tiny and huge
// magnitudes, and on 0, 1 and 2 cells.
func TestSortCellsOrdersAsComparison(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 9))
	pool := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, -0.5, 1e-300, -1e-300, 1e300, -1e300, math.SmallestNonzeroFloat64, 3.25}
	for _, n := range []int{0, 1, 2, 3, 17, 256, 1000, 4097} {
		var s Search
		s.cells = make([]orderedCell, n)
		for i := range s.cells {
			sc := rng.NormFloat64()
			if rng.IntN(3) == 0 {
				sc = pool[rng.IntN(len(pool))]
			}
			s.cells[i] = orderedCell{c: int32(i), score: sc}
		}
		want := slices.Clone(s.cells)
		slices.SortFunc(want, func(a, b orderedCell) int {
			switch {
			case a.score > b.score:
				return -1
			case a.score < b.score:
				return 1
			}
			return int(a.c - b.c)
		})
		for range 2 { // the second run reuses the buffers
			s.sortCells()
			if len(s.byScore) != n {
				t.Fatalf("n=%d: %d indexes", n, len(s.byScore))
			}
			for i, j := range s.byScore {
				if s.cells[j].c != want[i].c {
					t.Fatalf("n=%d: position %d holds cell %d (score %v), want %d (score %v)", n, i, s.cells[j].c, s.cells[j].score, want[i].c, want[i].score)
				}
			}
		}
	}
}
