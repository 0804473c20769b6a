//go:build unix

package itemindex

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/topk"
)

// cpuTime is the process's user + system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSearchBlock: the top 20 of n items × 64 factors (planted
// clusters, IVF with the default probe) for blocks of 32 queries near
// items, each block searched both ways in the same iteration, so a shared
// machine's load falls on both alike: one search after the other
// ("per_user": Start then Top) and started together ("batched":
// StartBlock, the cells every search scans first read once for the
// block). It reports each way's queries per CPU-second of the process
// (the benchmark is single-goroutine) and batched/per_user.
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
			var perUser, batched time.Duration
			b.ReportAllocs()
			k := 0
			for b.Loop() {
				qs := blocks[k%len(blocks)]
				t0 := cpuTime(b)
				for i, q := range qs {
					if err := ix.Start(ss[i], q); err != nil {
						b.Fatal(err)
					}
					out = ss[i].Top(20, nil, nil, out[:0])
				}
				t1 := cpuTime(b)
				if err := ix.StartBlock(ss, qs); err != nil {
					b.Fatal(err)
				}
				for _, s := range ss {
					out = s.Top(20, nil, nil, out[:0])
				}
				t2 := cpuTime(b)
				perUser += t1 - t0
				batched += t2 - t1
				k++
			}
			users := float64(block * b.N)
			b.ReportMetric(users/perUser.Seconds(), "per_user_users/cpu-s")
			b.ReportMetric(users/batched.Seconds(), "batched_users/cpu-s")
			b.ReportMetric(perUser.Seconds()/batched.Seconds(), "speedup")
		})
	}
}
