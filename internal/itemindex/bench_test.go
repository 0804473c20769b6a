package itemindex

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/recsys-dev/recsys/internal/topk"
)

// BenchmarkSearch: the top 20 of n items × 64 factors for a query near an
// item, by the exact float32 scan (Scores + heap), the flat quantized index
// (exact answers) and the IVF index (default probe). It reports the index's
// memory over the factors' (factors + codes + index) / factors.
func BenchmarkSearch(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		rng := rand.New(rand.NewPCG(9, 9))
		const f = 64
		m := newModel(b, f, plantedFactors(rng, n, f, 1000))
		queries := make([][]float32, 64)
		for i := range queries {
			queries[i] = m.Vector(int32(rng.IntN(n)))
		}
		b.Run(fmt.Sprintf("n=%d/exact", n), func(b *testing.B) {
			b.ReportAllocs()
			scores := make([]float32, n)
			h := topk.New(20)
			var out []topk.Entry
			i := 0
			for b.Loop() {
				m.Scores(queries[i%len(queries)], scores)
				h.Reset(20)
				for r, s := range scores {
					if h.Accepts(s) {
						h.Push(int32(r), s)
					}
				}
				out = h.Sorted(out[:0])
				i++
			}
		})
		flat := Flat(m)
		ivf, err := BuildIVF(m, IVFOptions{Seed: 1})
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct {
			name     string
			ix       *Index
			noExtend bool
		}{{"quant", flat, false}, {"ivf", ivf, false}, {"ivf-noextend", ivf, true}} {
			b.Run(fmt.Sprintf("n=%d/%s", n, c.name), func(b *testing.B) {
				b.ReportAllocs()
				var s Search
				var out []topk.Entry
				i := 0
				for b.Loop() {
					if err := c.ix.Start(&s, Query{X: queries[i%len(queries)], NoExtend: c.noExtend}); err != nil {
						b.Fatal(err)
					}
					out = s.Top(20, nil, nil, out[:0])
					i++
				}
				factors := float64(4 * n * f)
				b.ReportMetric((factors+float64(c.ix.Bytes()))/factors, "mem/factors")
			})
		}
	}
}
