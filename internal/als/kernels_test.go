package als

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/gonum"
)

func TestKernelsMatchBlas32(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 3, 4, 7, 64, 129} {
		x, y := make([]float32, n), make([]float32, n)
		for i := range x {
			x[i], y[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		got := dotLoop(x, y)
		want := blas32.Dot(blas32.Vector{N: n, Inc: 1, Data: x}, blas32.Vector{N: n, Inc: 1, Data: y})
		if d := got - want; d > 1e-4 || d < -1e-4 {
			t.Errorf("n=%d: dotLoop = %v, want %v", n, got, want)
		}
		if d := dot(x, y) - want; d > 1e-4 || d < -1e-4 {
			t.Errorf("n=%d: dot = %v, want %v", n, dot(x, y), want)
		}
		got2 := append([]float32(nil), y...)
		want2 := append([]float32(nil), y...)
		axpyLoop(0.5, x, got2)
		blas32.Axpy(0.5, blas32.Vector{N: n, Inc: 1, Data: x}, blas32.Vector{N: n, Inc: 1, Data: want2})
		for i := range got2 {
			if d := got2[i] - want2[i]; d > 1e-5 || d < -1e-5 {
				t.Errorf("n=%d: axpy[%d] = %v, want %v", n, i, got2[i], want2[i])
			}
		}
	}
}

var sink float32

// dotLoop and axpyLoop are the hand-written alternatives to dot and axpy
// that BenchmarkKernels measures.
func dotLoop(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func axpyLoop(a float32, x, y []float32) {
	y = y[:len(x)]
	i := 0
	for ; i+4 <= len(x); i += 4 {
		y[i] += a * x[i]
		y[i+1] += a * x[i+1]
		y[i+2] += a * x[i+2]
		y[i+3] += a * x[i+3]
	}
	for ; i < len(x); i++ {
		y[i] += a * x[i]
	}
}

// BenchmarkKernels measures the two per-entry kernels and the Gram
// matrix-vector product against gonum's blas32, which decided what the
// solvers use (benchmarks/README.md).
func BenchmarkKernels(b *testing.B) {
	for _, f := range []int{32, 64, 128} {
		x, y, g := make([]float32, f), make([]float32, f), make([]float32, f*f)
		for i := range x {
			x[i], y[i] = float32(i)*0.01, 1-float32(i)*0.01
		}
		for i := range g {
			g[i] = float32(i%7) * 0.1
		}
		vx, vy := blas32.Vector{N: f, Inc: 1, Data: x}, blas32.Vector{N: f, Inc: 1, Data: y}
		fs := "f=" + strconv.Itoa(f)
		b.Run("dot/go/"+fs, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink += dotLoop(x, y)
			}
		})
		b.Run("dot/blas32/"+fs, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink += blas32.Dot(vx, vy)
			}
		})
		b.Run("dot/gonum/"+fs, func(b *testing.B) {
			b.ReportAllocs()
			impl := gonum.Implementation{}
			for b.Loop() {
				sink += impl.Sdot(f, x, 1, y, 1)
			}
		})
		b.Run("axpy/gonum/"+fs, func(b *testing.B) {
			b.ReportAllocs()
			impl := gonum.Implementation{}
			for b.Loop() {
				impl.Saxpy(f, 1e-9, x, 1, y, 1)
			}
		})
		b.Run("axpy/go/"+fs, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				axpyLoop(1e-9, x, y)
			}
		})
		b.Run("axpy/blas32/"+fs, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				blas32.Axpy(1e-9, vx, vy)
			}
		})
		b.Run("gemv/go/"+fs, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for d := 0; d < f; d++ {
					y[d] = dotLoop(g[d*f:d*f+f], x)
				}
			}
		})
		b.Run("gemv/blas32/"+fs, func(b *testing.B) {
			b.ReportAllocs()
			gm := blas32.General{Rows: f, Cols: f, Stride: f, Data: g}
			for b.Loop() {
				blas32.Gemv(blas.NoTrans, 1, gm, vx, 0, vy)
			}
		})
	}
}
