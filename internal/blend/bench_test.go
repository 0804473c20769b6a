package blend

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/mf/mftest"
)

// randomLists gives every item k random distinct other items.
func randomLists(n, k int, seed uint64) *Lists {
	rng := rand.New(rand.NewPCG(seed, 1))
	l := &Lists{Ptr: make([]int64, n+1)}
	for i := range n {
		seen := map[int32]bool{int32(i): true}
		for len(seen) <= k {
			j := int32(rng.IntN(n))
			if !seen[j] {
				seen[j] = true
				l.Item = append(l.Item, j)
				l.Weight = append(l.Weight, rng.Float32()+0.01)
			}
		}
		l.Ptr[i+1] = int64(len(l.Item))
	}
	return l
}

// BenchmarkBlend measures scoring every item for a 50-item profile (after
// the fold-in): "mf" is the matrix-vector product alone, "blend" adds
// Prepare (the standardization and the sparse terms) and Finish.
func BenchmarkBlend(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run("items="+strconv.Itoa(n), func(b *testing.B) {
			m := mftest.Random(b, n, 64, 1)
			p := DefaultParams()
			p.Neighbor, p.Transition, p.Recency = 0.5, 1, 1
			bl, err := New(m, randomLists(n, 50, 2), randomLists(n, 50, 3), p)
			if err != nil {
				b.Fatal(err)
			}
			recent := make([]int32, 50)
			w := make([]float64, 50)
			for k := range recent {
				recent[k], w[k] = int32(k*7), 1
			}
			var ws mf.Workspace
			x, err := m.FoldIn(&ws, recent, w)
			if err != nil {
				b.Fatal(err)
			}
			out := make([]float32, n)
			var s Scratch
			b.Run("mf", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					m.Scores(x, out)
				}
			})
			b.Run("blend", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					m.Scores(x, out)
					bl.Prepare(&s, x, recent)
					bl.Finish(&s, out)
					s.Release()
				}
			})
		})
	}
}
