package mf

import (
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// Scores writes y_i·x for every item into out (len NumItems) with one
// matrix-vector product over the contiguous factor block (gonum's SIMD
// kernels), allocating nothing.
func (m *Model) Scores(x []float32, out []float32) {
	n := len(m.ids)
	blas32.Gemv(blas.NoTrans, 1,
		blas32.General{Rows: n, Cols: m.f, Stride: m.f, Data: m.factors},
		blas32.Vector{N: m.f, Inc: 1, Data: x},
		0, blas32.Vector{N: n, Inc: 1, Data: out[:n]})
}

// ScoresBlock writes the scores of k user vectors (xs, k×F row-major) for
// every item into out (k×NumItems row-major): the matrix product X·Yᵀ.
//
// On amd64 with AVX2 and FMA it runs a register-blocked kernel (4 users ×
// 16 items per call, or 4 × 32 with AVX-512; score_amd64.s) over a copy of
// the factors packed factor-major in groups of 16 (32) items, built on the
// first call (as much memory again as the factors: 25.6 MB at 100K items ×
// 64 factors), so that each factor value is read once per 4 users and no
// horizontal sums are needed. That is several times the throughput of one matrix-vector product
// per user or of gonum's float32 Gemm, which has no AVX kernel
// (BenchmarkScoresBlock). Elsewhere, and for the rows and items that do not
// fill a kernel call, it computes matrix-vector products.
// It allocates nothing after the first call.
func (m *Model) ScoresBlock(xs []float32, k int, out []float32) {
	m.scoresBlock(xs, k, out, useKernel, kernelWidth)
}

// scoresBlock is ScoresBlock with the kernel and its width chosen by the
// caller (tests run every kernel the machine has). A model must always be
// scored with the same width.
func (m *Model) scoresBlock(xs []float32, k int, out []float32, withKernel bool, width int) {
	n, f := len(m.ids), m.f
	xs, out = xs[:k*f], out[:k*n]
	quads := 0
	if withKernel && n >= width && k >= 4 { // fewer than 4 users: no kernel call, no packed copy
		quads = k / 4
		m.kernelBlock(xs, quads, out, width)
	}
	// Rows left over by the kernel: one matrix-vector product each.
	for u := 4 * quads; u < k; u++ {
		m.Scores(xs[u*f:(u+1)*f], out[u*n:(u+1)*n])
	}
}

// packedFactors is the factor matrix in the kernel's layout: for each group
// of w items (w the kernel's width; the last n%w items are left out), f rows
// of w values, data[g*w*f + j*w + i] = y_{wg+i}[j].
type packedFactors struct {
	once sync.Once
	data []float32
}

func (m *Model) packedFactors(w int) []float32 {
	p := m.packed
	p.once.Do(func() {
		n, f := len(m.ids), m.f
		groups := n / w
		p.data = make([]float32, groups*w*f)
		for g := range groups {
			dst := p.data[g*w*f : (g+1)*w*f]
			for i := range w {
				for j, v := range m.factors[(g*w+i)*f : (g*w+i+1)*f] {
					dst[j*w+i] = v
				}
			}
		}
	})
	return p.data
}

// tileBytes is how much of the packed factors one pass over the quads of
// users covers: it stays in L2 while every quad runs over it.
const tileBytes = 128 << 10

// kernelBlock scores 4*quads users with the assembly kernel of width w
// (the same for every call in a process: the packing is built for it).
func (m *Model) kernelBlock(xs []float32, quads int, out []float32, w int) {
	n, f := len(m.ids), m.f
	packed := m.packedFactors(w)
	groups := n / w
	tile := max(1, tileBytes/(4*w*f)) // groups per tile
	for g0 := 0; g0 < groups; g0 += tile {
		for q := range quads {
			for g := g0; g < min(g0+tile, groups); g++ {
				kernel(w, f, &xs[q*4*f], f, &packed[g*w*f], &out[q*4*n+g*w], n)
			}
		}
	}
	// The last n%w items: a matrix-vector product per user, as in Scores.
	if tail := n - groups*w; tail > 0 {
		ys := blas32.General{Rows: tail, Cols: f, Stride: f, Data: m.factors[groups*w*f:]}
		for u := range 4 * quads {
			blas32.Gemv(blas.NoTrans, 1, ys, blas32.Vector{N: f, Inc: 1, Data: xs[u*f : (u+1)*f]},
				0, blas32.Vector{N: tail, Inc: 1, Data: out[u*n+groups*w : (u+1)*n]})
		}
	}
}

// Cosine writes the cosine similarity of every item with row i into out;
// items with zero factors score 0.
func (m *Model) Cosine(i int32, out []float32) {
	m.Scores(m.Vector(i), out)
	m.CosineFromDots(i, out)
}

// CosineFromDots turns the dot products of row i with every item (the
// scores of Vector(i), however computed) into what Cosine writes, in place.
func (m *Model) CosineFromDots(i int32, out []float32) {
	qn := m.norms[i]
	for j, s := range out[:len(m.ids)] {
		d := qn * m.norms[j]
		if d > 0 {
			out[j] = s / d
		} else {
			out[j] = 0
		}
	}
}

// Score is y_i·x for one item, the value Scores writes for row i (the same
// kernel family, so equal up to float32 summation order).
func (m *Model) Score(x []float32, i int32) float32 {
	return blas32.Dot(blas32.Vector{N: m.f, Inc: 1, Data: x}, blas32.Vector{N: m.f, Inc: 1, Data: m.Vector(i)})
}
