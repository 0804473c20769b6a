package als

import (
	"context"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/sparse"
	"github.com/recsys-dev/recsys/internal/sparse/sparsetest"
)

// benchMatrix is ~1M interactions: 50K users × 20K items, power-law item
// popularity, 16 planted clusters (about 0.93M distinct pairs after
// aggregation).
func benchMatrix(b *testing.B) *sparse.Matrix {
	b.Helper()
	return sparsetest.Generate(sparsetest.Config{
		Users: 50_000, Items: 20_000, Clusters: 16, PerUser: 20, Zipf: 0.9, Noise: 0.2, Seed: 1,
	}).Matrix()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIteration measures one ALS iteration (user half-step + item
// half-step, including both YᵀY products) on ~1M interactions, per solver
// and factor count. Besides ns/op it reports wall and CPU nanoseconds per
// stored interaction per iteration.
func BenchmarkIteration(b *testing.B) {
	m := benchMatrix(b)
	mt := m.Transpose()
	for _, tc := range []struct {
		solver  string
		factors int
	}{{SolverCG, 32}, {SolverCG, 64}, {SolverCG, 128}, {SolverCholesky, 64}} {
		b.Run(tc.solver+"/f="+strconv.Itoa(tc.factors), func(b *testing.B) {
			h := mf.Hyperparameters{Factors: tc.factors, Regularization: 0.05, RegExponent: 0.5, Alpha: 2, Iterations: 1, Solver: tc.solver, Seed: 1}
			cfg, err := Config{Hyperparameters: h}.withDefaults()
			if err != nil {
				b.Fatal(err)
			}
			users, items := newSide(m, tc.factors), newSide(mt, tc.factors)
			for k := range items.x {
				items.x[k] = float32(k%7) * 0.01
			}
			ws := newWorkspaces(cfg.Workers, tc.factors, cfg.Solver)
			ctx := context.Background()
			b.ReportAllocs()
			cpu0, n := cpuTime(), 0
			for b.Loop() {
				if err := halfStep(ctx, users, items.x, cfg, ws); err != nil {
					b.Fatal(err)
				}
				if err := halfStep(ctx, items, users.x, cfg, ws); err != nil {
					b.Fatal(err)
				}
				n++
			}
			cpu := cpuTime() - cpu0
			nnz := float64(m.NNZ()) * float64(n)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/nnz, "ns/interaction")
			b.ReportMetric(float64(cpu.Nanoseconds())/nnz, "cpu-ns/interaction")
		})
	}
}

// BenchmarkTrain is a whole 5-iteration CG training run at 64 factors on
// ~1M interactions, including the transpose and initialisation, to measure
// the memory a run allocates (B/op) and the heap in use at its end.
func BenchmarkTrain(b *testing.B) {
	m := benchMatrix(b)
	h := mf.Hyperparameters{Factors: 64, Regularization: 0.05, RegExponent: 0.5, Alpha: 2, Iterations: 5, Seed: 1}
	b.ReportAllocs()
	var heap uint64
	for b.Loop() {
		res, err := Train(context.Background(), m, Config{Hyperparameters: h})
		if err != nil {
			b.Fatal(err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		heap = max(heap, ms.HeapInuse)
		runtime.KeepAlive(res)
	}
	b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(m.NNZ()), "nnz")
}
