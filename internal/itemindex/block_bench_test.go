package itemindex

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/recsys-dev/recsys/internal/topk"
)

// BenchmarkSearchBlock: the top 20 of n items × 64 factors (planted
// clusters, IVF with the default probe) for a block of 32 queries near
// items, one search after the other ("per-user", Start then Top) or
// started together ("batched", StartBlock: the cells every search scans
// first are read once for the block). ns/op is one block; users/s is
// queries per second of the benchmark's time.
func BenchmarkSearchBlock(b *testing.B) {
	const f, block = 64, 32
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(9, 9))
			m := newModel(b, f, plantedFactors(rng, n, f, 1000))
			ix, err := BuildIVF(m, IVFOptions{Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			blocks := make([][]Query, 8)
			for k := range blocks {
				for range block {
					blocks[k] = append(blocks[k], Query{X: m.Vector(int32(rng.IntN(n)))})
				}
			}
			ss := make([]*Search, block)
			for i := range ss {
				ss[i] = &Search{}
			}
			var out []topk.Entry
			for _, batched := range []bool{false, true} {
				name := "per-user"
				if batched {
					name = "batched"
				}
				b.Run(name, func(b *testing.B) {
					b.ReportAllocs()
					k := 0
					for b.Loop() {
						qs := blocks[k%len(blocks)]
						if batched {
							if err := ix.StartBlock(ss, qs); err != nil {
								b.Fatal(err)
							}
							for _, s := range ss {
								out = s.Top(20, nil, nil, out[:0])
							}
						} else {
							for i, q := range qs {
								if err := ix.Start(ss[i], q); err != nil {
									b.Fatal(err)
								}
								out = ss[i].Top(20, nil, nil, out[:0])
							}
						}
						k++
					}
					b.ReportMetric(float64(block*b.N)/b.Elapsed().Seconds(), "users/s")
				})
			}
		})
	}
}
