// Package sparse holds the user×item matrix implicit ALS trains on: a
// compressed sparse row (CSR) matrix of float32 strengths with the string ids
// of its rows and columns, its transpose (which is the CSC form the item
// half-step of ALS walks), and a Builder that aggregates events into it with
// the shared event weighting.
//
// Memory is the constraint that shapes the code: a Builder keeps three 4-byte
// values per event (row, column, weight) plus the two id tables, and Build
// aggregates duplicates with a counting sort by row followed by a sort of each
// (short) row by column, so no map keyed by (user, item) is ever built.
package sparse

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Matrix is a CSR matrix: the entries of row i are Indices[Indptr[i]:Indptr[i+1]]
// (column indices, strictly increasing) with values Data[Indptr[i]:Indptr[i+1]].
// RowIDs and ColIDs, when set, name the rows and columns (len Rows and Cols).
type Matrix struct {
	Rows, Cols int
	Indptr     []int64 // len Rows+1
	Indices    []int32 // len NNZ
	Data       []float32
	RowIDs     []string
	ColIDs     []string
}

// NNZ is the number of stored entries.
func (m *Matrix) NNZ() int { return len(m.Indices) }

// Row returns the column indices and values of row i; callers must not
// modify them.
func (m *Matrix) Row(i int) (cols []int32, vals []float32) {
	lo, hi := m.Indptr[i], m.Indptr[i+1]
	return m.Indices[lo:hi], m.Data[lo:hi]
}

// RowLen is the number of entries of row i.
func (m *Matrix) RowLen(i int) int { return int(m.Indptr[i+1] - m.Indptr[i]) }

// Transpose returns the Cols×Rows CSR matrix of mᵀ (that is, m in CSC form),
// with the id tables swapped. It runs in O(NNZ + Rows + Cols) and keeps the
// column indices of each row sorted.
func (m *Matrix) Transpose() *Matrix {
	t := &Matrix{
		Rows:    m.Cols,
		Cols:    m.Rows,
		Indptr:  make([]int64, m.Cols+1),
		Indices: make([]int32, len(m.Indices)),
		Data:    make([]float32, len(m.Data)),
		RowIDs:  m.ColIDs,
		ColIDs:  m.RowIDs,
	}
	for _, c := range m.Indices {
		t.Indptr[c+1]++
	}
	for c := 0; c < m.Cols; c++ {
		t.Indptr[c+1] += t.Indptr[c]
	}
	next := slices.Clone(t.Indptr[:m.Cols])
	// Walking the rows in order writes each column's row indices in
	// increasing order, so the transpose needs no sort.
	for r := 0; r < m.Rows; r++ {
		for k := m.Indptr[r]; k < m.Indptr[r+1]; k++ {
			c := m.Indices[k]
			p := next[c]
			t.Indices[p] = int32(r)
			t.Data[p] = m.Data[k]
			next[c]++
		}
	}
	return t
}

// Validate checks the structure: lengths, monotone Indptr, column indices in
// range and strictly increasing within each row, finite values and id
// tables of the right length. Matrices from this package always pass; the
// check is for matrices assembled by hand.
func (m *Matrix) Validate() error {
	switch {
	case m.Rows < 0 || m.Cols < 0:
		return fmt.Errorf("matrix has negative shape %d×%d", m.Rows, m.Cols)
	case len(m.Indptr) != m.Rows+1:
		return fmt.Errorf("indptr has %d entries for %d rows, want %d", len(m.Indptr), m.Rows, m.Rows+1)
	case len(m.Indices) != len(m.Data):
		return fmt.Errorf("%d column indices but %d values", len(m.Indices), len(m.Data))
	case m.Indptr[0] != 0 || m.Indptr[m.Rows] != int64(len(m.Indices)):
		return fmt.Errorf("indptr spans %d..%d, want 0..%d", m.Indptr[0], m.Indptr[m.Rows], len(m.Indices))
	case m.RowIDs != nil && len(m.RowIDs) != m.Rows:
		return fmt.Errorf("%d row ids for %d rows", len(m.RowIDs), m.Rows)
	case m.ColIDs != nil && len(m.ColIDs) != m.Cols:
		return fmt.Errorf("%d column ids for %d columns", len(m.ColIDs), m.Cols)
	}
	for r := 0; r < m.Rows; r++ {
		lo, hi := m.Indptr[r], m.Indptr[r+1]
		if hi < lo {
			return fmt.Errorf("row %d: indptr decreases (%d then %d)", r, lo, hi)
		}
		prev := int32(-1)
		for k := lo; k < hi; k++ {
			c := m.Indices[k]
			if c <= prev || int(c) >= m.Cols {
				return fmt.Errorf("row %d: column %d out of order or out of range 0..%d", r, c, m.Cols-1)
			}
			if v := float64(m.Data[k]); math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("row %d, column %d: value %v", r, c, v)
			}
			prev = c
		}
	}
	return nil
}

// Triples are entries given by index, in any order and possibly repeated;
// FromTriples sums repeated (row, column) pairs.
type Triples struct {
	Row, Col []int32
	Val      []float32
}

// Len is the number of triples.
func (t *Triples) Len() int { return len(t.Row) }

// Append adds one entry.
func (t *Triples) Append(row, col int32, val float32) {
	t.Row = append(t.Row, row)
	t.Col = append(t.Col, col)
	t.Val = append(t.Val, val)
}

// ErrBadTriple marks a triple outside the matrix or with a non-finite value.
var ErrBadTriple = errors.New("bad matrix entry")

// FromTriples builds a rows×cols matrix from entries given by index, summing
// the values of repeated (row, column) pairs in float64 (in the order the
// triples are given) before rounding to float32. rowIDs and colIDs may be nil.
// The triples are not modified.
func FromTriples(rows, cols int, t *Triples, rowIDs, colIDs []string) (*Matrix, error) {
	if rows < 0 || cols < 0 || rows > math.MaxInt32 || cols > math.MaxInt32 {
		return nil, fmt.Errorf("matrix shape %d×%d out of range", rows, cols)
	}
	if len(t.Col) != len(t.Row) || len(t.Val) != len(t.Row) {
		return nil, fmt.Errorf("triples have %d rows, %d columns, %d values", len(t.Row), len(t.Col), len(t.Val))
	}
	if rowIDs != nil && len(rowIDs) != rows {
		return nil, fmt.Errorf("%d row ids for %d rows", len(rowIDs), rows)
	}
	if colIDs != nil && len(colIDs) != cols {
		return nil, fmt.Errorf("%d column ids for %d columns", len(colIDs), cols)
	}
	indptr := make([]int64, rows+1)
	for k, r := range t.Row {
		c, v := t.Col[k], t.Val[k]
		if r < 0 || int(r) >= rows || c < 0 || int(c) >= cols {
			return nil, fmt.Errorf("%w: triple %d at (%d, %d) outside %d×%d", ErrBadTriple, k, r, c, rows, cols)
		}
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("%w: triple %d at (%d, %d) has value %v", ErrBadTriple, k, r, c, v)
		}
		indptr[r+1]++
	}
	for r := 0; r < rows; r++ {
		indptr[r+1] += indptr[r]
	}
	// Counting sort by row; within a row the triples keep their input order.
	n := len(t.Row)
	idx := make([]int32, n)
	val := make([]float32, n)
	next := slices.Clone(indptr[:rows])
	for k, r := range t.Row {
		p := next[r]
		idx[p] = t.Col[k]
		val[p] = t.Val[k]
		next[r]++
	}
	next = nil
	// Sort each row by column (stable, so repeated pairs are summed in input
	// order) and merge repeats, compacting in place.
	var (
		perm    []int32
		rowCols []int32
		sums    []float64
		out     int64
	)
	for r := 0; r < rows; r++ {
		lo, hi := indptr[r], indptr[r+1]
		indptr[r] = out
		m := int(hi - lo)
		if m == 0 {
			continue
		}
		perm = perm[:0]
		for k := 0; k < m; k++ {
			perm = append(perm, int32(k))
		}
		cs, vs := idx[lo:hi], val[lo:hi]
		slices.SortStableFunc(perm, func(a, b int32) int { return int(cs[a]) - int(cs[b]) })
		// cs/vs are read through perm while out <= lo writes behind them;
		// copy the row first so overlapping writes cannot clobber it.
		rowCols, sums = rowCols[:0], sums[:0]
		for _, p := range perm {
			c := cs[p]
			if len(rowCols) > 0 && rowCols[len(rowCols)-1] == c {
				sums[len(sums)-1] += float64(vs[p])
				continue
			}
			rowCols = append(rowCols, c)
			sums = append(sums, float64(vs[p]))
		}
		for k, c := range rowCols {
			if s := float32(sums[k]); math.IsInf(float64(s), 0) {
				return nil, fmt.Errorf("%w: sum at (%d, %d) overflows float32", ErrBadTriple, r, c)
			}
			idx[out] = c
			val[out] = float32(sums[k])
			out++
		}
	}
	indptr[rows] = out
	if out < int64(n)*3/4 {
		// Many repeats: give the unused tail back instead of keeping it alive.
		idx, val = slices.Clone(idx[:out]), slices.Clone(val[:out])
	}
	return &Matrix{
		Rows:    rows,
		Cols:    cols,
		Indptr:  indptr,
		Indices: idx[:out:out],
		Data:    val[:out:out],
		RowIDs:  rowIDs,
		ColIDs:  colIDs,
	}, nil
}
