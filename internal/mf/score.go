package mf

import (
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
// every item into out (k×NumItems row-major) with one matrix-matrix product.
func (m *Model) ScoresBlock(xs []float32, k int, out []float32) {
	n := len(m.ids)
	blas32.Gemm(blas.NoTrans, blas.Trans, 1,
		blas32.General{Rows: k, Cols: m.f, Stride: m.f, Data: xs},
		blas32.General{Rows: n, Cols: m.f, Stride: m.f, Data: m.factors},
		0, blas32.General{Rows: k, Cols: n, Stride: n, Data: out[:k*n]})
}

// Cosine writes the cosine similarity of every item with row i into out;
// items with zero factors score 0.
func (m *Model) Cosine(i int32, out []float32) {
	m.Scores(m.Vector(i), out)
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
