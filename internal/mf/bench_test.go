package mf

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"strconv"
	"testing"
)

// BenchmarkFoldInAndContributions: one fold-in of a 100-item profile, and
// the exact decomposition of one item's score over that profile (what an
// explanation costs per returned item), at 64 factors.
func BenchmarkFoldInAndContributions(b *testing.B) {
	m := randomModel(b, 10_000, 64, 5)
	rows := make([]int32, 100)
	w := make([]float64, 100)
	for i := range rows {
		rows[i], w[i] = int32(i*97), 1+float64(i%5)
	}
	ws := &Workspace{}
	out := make([]float64, len(rows))
	b.Run("foldin/profile="+strconv.Itoa(len(rows)), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.FoldIn(ws, rows, w); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("contributions/profile="+strconv.Itoa(len(rows)), func(b *testing.B) {
		if _, err := m.FoldIn(ws, rows, w); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := m.Contributions(ws, rows, w, 4242, out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkScoresBlock: scoring a block of users against 100K items at 64
// factors, as BatchRecommend does, with each kernel the machine has, against
// one matrix-vector product per user (what Recommend does) and gonum's
// float32 Gemm.
func BenchmarkScoresBlock(b *testing.B) {
	const n, f = 100_000, 64
	base := randomModel(b, n, f, 5)
	for _, k := range []int{4, 32, 64} {
		xs := make([]float32, k*f)
		for i := range xs {
			xs[i] = float32(i%7-3) * 0.1
		}
		out := make([]float32, k*n)
		run := func(name string, score func()) {
			b.Run(name+"/users="+strconv.Itoa(k), func(b *testing.B) {
				b.ReportAllocs()
				score() // packs the factors for a kernel
				for b.Loop() {
					score()
				}
				b.ReportMetric(float64(k*b.N)/b.Elapsed().Seconds(), "users/s")
			})
		}
		for _, kern := range scoringKernels() {
			if !kern.use {
				continue
			}
			m, err := New(base.Info(), base.ItemIDs(), base.Matrix()) // its own packing
			if err != nil {
				b.Fatal(err)
			}
			run("block-"+kern.name, func() { m.scoresBlock(xs, k, out, true, kern.width) })
		}
		run("gemv", func() {
			for u := range k {
				base.Scores(xs[u*f:(u+1)*f], out[u*n:(u+1)*n])
			}
		})
		run("gonum-gemm", func() {
			blas32.Gemm(blas.NoTrans, blas.Trans, 1,
				blas32.General{Rows: k, Cols: f, Stride: f, Data: xs},
				blas32.General{Rows: n, Cols: f, Stride: f, Data: base.factors},
				0, blas32.General{Rows: k, Cols: n, Stride: n, Data: out})
		})
	}
}
