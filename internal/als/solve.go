package als

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	lapack "gonum.org/v1/gonum/lapack/gonum"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/sparse"
)

// side is one half of the factorization: the matrix whose rows it solves
// (users: R; items: Rᵀ), its factors and the chunks workers pull.
type side struct {
	m      *sparse.Matrix
	x      []float32 // m.Rows × f, row-major
	f      int
	chunks []int // chunk c is rows chunks[c] .. chunks[c+1]-1
}

// Chunk limits: a chunk ends when it has maxChunkRows rows or its estimated
// cost reaches maxChunkCost (in units of f multiply-adds: 2 per entry for
// the dot and the axpy, f per row for the YᵀY product). Small chunks keep
// the workers balanced on power-law rows and bound the cancellation delay.
const (
	maxChunkRows = 256
	maxChunkCost = 1 << 15
)

func newSide(m *sparse.Matrix, f int) *side {
	s := &side{m: m, x: make([]float32, m.Rows*f), f: f, chunks: []int{0}}
	var rows, cost int
	for r := 0; r < m.Rows; r++ {
		rows++
		cost += 2*m.RowLen(r) + f
		if rows == maxChunkRows || cost >= maxChunkCost {
			s.chunks = append(s.chunks, r+1)
			rows, cost = 0, 0
		}
	}
	if rows > 0 {
		s.chunks = append(s.chunks, m.Rows)
	}
	return s
}

// workspace is one worker's scratch space.
type workspace struct {
	r, p, ap []float32 // CG residual, direction, A·direction
	a, b, yd []float64 // Cholesky system, right-hand side, one row in float64
	err      error     // first failure of this worker
}

func newWorkspaces(n, f int, solver string) []*workspace {
	ws := make([]*workspace, n)
	for i := range ws {
		w := &workspace{b: make([]float64, f), yd: make([]float64, f)}
		if solver == SolverCholesky {
			w.a = make([]float64, f*f)
		} else {
			w.r, w.p, w.ap = make([]float32, f), make([]float32, f), make([]float32, f)
		}
		ws[i] = w
	}
	return ws
}

// parallel runs fn for chunks 0..n-1 on workers goroutines that pull the
// next chunk from a shared counter, checking ctx before each one. It returns
// ctx.Err() if ctx was cancelled.
func parallel(ctx context.Context, workers, n int, fn func(worker, chunk int)) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				c := int(next.Add(1) - 1)
				if c >= n {
					return
				}
				fn(w, c)
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// gram returns YᵀY (f×f, float64) of the n×f factors y. Fixed chunks of rows
// are multiplied in float32 with gonum's Sgemm and their products summed in
// float64 in chunk order, so the result does not depend on the number of
// workers.
func gram(ctx context.Context, y []float32, f, workers int) ([]float64, error) {
	n := len(y) / f
	size := max(2048, (n+63)/64) // at most 64 partial products
	nc := (n + size - 1) / size
	parts := make([]float32, nc*f*f)
	err := parallel(ctx, workers, nc, func(_, c int) {
		lo, hi := c*size, min(n, (c+1)*size)
		blk := y[lo*f : hi*f]
		gonum.Implementation{}.Sgemm(blas.Trans, blas.NoTrans, f, f, hi-lo, 1, blk, f, blk, f, 0, parts[c*f*f:(c+1)*f*f], f)
	})
	if err != nil {
		return nil, err
	}
	g := make([]float64, f*f)
	for c := range nc {
		for k, v := range parts[c*f*f : (c+1)*f*f] {
			g[k] += float64(v)
		}
	}
	for a := 0; a < f; a++ { // exact symmetry
		for b := a + 1; b < f; b++ {
			v := (g[a*f+b] + g[b*f+a]) / 2
			g[a*f+b], g[b*f+a] = v, v
		}
	}
	return g, nil
}

// halfStep recomputes the factors of every row of s with the other side's
// factors fixed.
func halfStep(ctx context.Context, s *side, other []float32, cfg Config, ws []*workspace) error {
	f := s.f
	g, err := gram(ctx, other, f, cfg.Workers)
	if err != nil {
		return err
	}
	var g32 []float32
	if cfg.Solver == SolverCG {
		g32 = make([]float32, len(g))
		for k, v := range g {
			g32[k] = float32(v)
		}
	}
	alpha := cfg.Alpha
	err = parallel(ctx, cfg.Workers, len(s.chunks)-1, func(w, c int) {
		wk := ws[w]
		for r := s.chunks[c]; r < s.chunks[c+1]; r++ {
			cols, vals := s.m.Row(r)
			x := s.x[r*f : (r+1)*f]
			if len(cols) == 0 {
				clear(x) // the exact solution with nothing observed
				continue
			}
			reg := cfg.Reg(len(cols))
			if cfg.Solver == SolverCG {
				wk.conjugateGradient(x, cols, vals, other, g32, float32(reg), float32(alpha), cfg.CGSteps)
				continue
			}
			if err := wk.cholesky(x, cols, vals, other, g, reg, alpha); err != nil && wk.err == nil {
				wk.err = fmt.Errorf("row %d with %d entries: %w", r, len(cols), err)
			}
		}
	})
	if err != nil {
		return err
	}
	for _, wk := range ws {
		if wk.err != nil {
			return fmt.Errorf("solve: %w", wk.err)
		}
	}
	return nil
}

// cgTolerance ends the CG steps of a row once the squared residual is this
// small (the value `implicit` uses).
const cgTolerance = 1e-20

// conjugateGradient improves x towards the solution of
// (G + Σ (c_i−1) y_i y_iᵀ + reg·I) x = Σ c_i y_i with at most steps CG
// steps, starting from x itself. The system matrix is never formed.
func (wk *workspace) conjugateGradient(x []float32, cols []int32, vals []float32, y, g []float32, reg, alpha float32, steps int) {
	f := len(x)
	r, p, ap := wk.r, wk.p, wk.ap
	impl := gonum.Implementation{}
	// r = b − A x.
	impl.Sgemv(blas.NoTrans, f, f, -1, g, f, x, 1, 0, r, 1)
	axpy(-reg, x, r)
	for k, i := range cols {
		yi := y[int(i)*f : int(i)*f+f]
		cm := alpha * vals[k] // c − 1
		axpy(1+cm-cm*dot(yi, x), yi, r)
	}
	copy(p, r)
	rsOld := dot(r, r)
	if rsOld < cgTolerance {
		return
	}
	for range steps {
		// ap = A p.
		impl.Sgemv(blas.NoTrans, f, f, 1, g, f, p, 1, 0, ap, 1)
		axpy(reg, p, ap)
		for k, i := range cols {
			yi := y[int(i)*f : int(i)*f+f]
			axpy(alpha*vals[k]*dot(yi, p), yi, ap)
		}
		pAp := dot(p, ap)
		if !(pAp > 0) {
			return // no further descent is possible in float32
		}
		a := rsOld / pAp
		axpy(a, p, x)
		axpy(-a, ap, r)
		rsNew := dot(r, r)
		if rsNew < cgTolerance {
			return
		}
		beta := rsNew / rsOld
		for d := range p {
			p[d] = r[d] + beta*p[d]
		}
		rsOld = rsNew
	}
}

// cholesky sets x to the exact solution of the row's system, formed in
// float64 from the float64 Gram matrix g.
func (wk *workspace) cholesky(x []float32, cols []int32, vals []float32, y []float32, g []float64, reg, alpha float64) error {
	f := len(x)
	a, b, yd := wk.a, wk.b, wk.yd
	copy(a, g)
	for d := 0; d < f; d++ {
		a[d*f+d] += reg
	}
	clear(b)
	impl := gonum.Implementation{}
	for k, i := range cols {
		for d, v := range y[int(i)*f : int(i)*f+f] {
			yd[d] = float64(v)
		}
		cm := alpha * float64(vals[k])
		impl.Daxpy(f, 1+cm, yd, 1, b, 1)
		if cm != 0 {
			impl.Dsyr(blas.Upper, f, cm, yd, 1, a, f) // upper triangle only
		}
	}
	if !(lapack.Implementation{}).Dpotrf(blas.Upper, f, a, f) {
		return mf.ErrNotPositiveDefinite
	}
	lapack.Implementation{}.Dpotrs(blas.Upper, f, 1, a, f, b, 1)
	for d, v := range b {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("solution is %v", v)
		}
		x[d] = float32(v)
	}
	return nil
}

// loss is the objective of the package comment. For a user u with factors
// x, Σ over all items of c(p − s)² (s = x·y_i) is xᵀ(YᵀY)x plus, for the
// observed items only, c(1−s)² − s²; so the unobserved items cost nothing
// per item. Partial sums are kept per chunk and added in chunk order.
func loss(ctx context.Context, users, items *side, h mf.Hyperparameters, workers int) (float64, error) {
	f := users.f
	g, err := gram(ctx, items.x, f, workers)
	if err != nil {
		return 0, err
	}
	ws := make([][]float64, workers) // per worker: x in float64, then G·x
	for w := range ws {
		ws[w] = make([]float64, 2*f)
	}
	uParts := make([]float64, len(users.chunks)-1)
	err = parallel(ctx, workers, len(uParts), func(w, c int) {
		xd, gx := ws[w][:f], ws[w][f:]
		var sum float64
		for u := users.chunks[c]; u < users.chunks[c+1]; u++ {
			x := users.x[u*f : (u+1)*f]
			for d, v := range x {
				xd[d] = float64(v)
			}
			impl := gonum.Implementation{}
			impl.Dgemv(blas.NoTrans, f, f, 1, g, f, xd, 1, 0, gx, 1)
			sum += impl.Ddot(f, xd, 1, gx, 1)
			cols, vals := users.m.Row(u)
			for k, i := range cols {
				s := float64(dot(x, items.x[int(i)*f:int(i)*f+f]))
				cv := 1 + h.Alpha*float64(vals[k])
				sum += cv*(1-s)*(1-s) - s*s
			}
			sum += h.Reg(len(cols)) * impl.Ddot(f, xd, 1, xd, 1)
		}
		uParts[c] = sum
	})
	if err != nil {
		return 0, err
	}
	iParts := make([]float64, len(items.chunks)-1)
	err = parallel(ctx, workers, len(iParts), func(_ int, c int) {
		var sum float64
		for i := items.chunks[c]; i < items.chunks[c+1]; i++ {
			y := items.x[i*f : (i+1)*f]
			var n2 float64
			for _, v := range y {
				n2 += float64(v) * float64(v)
			}
			sum += h.Reg(items.m.RowLen(i)) * n2
		}
		iParts[c] = sum
	})
	if err != nil {
		return 0, err
	}
	var total float64
	for _, p := range uParts {
		total += p
	}
	for _, p := range iParts {
		total += p
	}
	return total, nil
}
