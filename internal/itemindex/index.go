// Package itemindex finds a model's best-scoring items for a query vector
// without reading every float32 factor: the serving side's candidate search.
//
// An Index holds every item's factors quantized to 8 bits (one scale per
// row, codes contiguous with a stride of the factors rounded up to 32) and,
// optionally, a partition of the items into k-means cells (IVF): items are
// stored cell by cell, with each cell's centroid and radius. A search scores
// the rows of the cells it probes from the codes with an integer kernel
// (AVX-512 VNNI or AVX2 on amd64, chosen at run time; a portable loop
// elsewhere), keeps an over-fetched set of candidates by approximate score,
// and re-ranks them with the exact float32 factors (the arithmetic of
// mf.Model.Scores, bit for bit). The over-fetch grows until a bound
// on the quantization error proves that no row outside it can rank among
// the k best, so within the probed rows the answer — rows, scores and order
// — is exactly the float32 scan's.
//
// Cells are probed in the order of their centroid's score; a cell whose
// upper bound (centroid score plus radius × |query|) is below the current
// k-th exact score is skipped, and when the admit function rejects so many
// rows that fewer than k remain, more cells are probed until k are found or
// every cell was scanned. An index without cells (Flat) scans every row and
// is exact.
//
// An Index is immutable and shared by all requests on its model; a Search
// holds one request's buffers and is reused through a pool by the caller.
package itemindex

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/blas/blas32"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/topk"
)

// Index is the search structure of one model. Positions are the index's own
// row order (cell by cell); rows maps them to model rows.
type Index struct {
	m      *mf.Model
	f      int
	stride int
	codes  []uint8   // n × stride, by position
	scale  []float32 // per position: y ≈ scale·(code−128)
	invn   []float32 // per position: 1/‖y‖, 0 for a zero row (cosine search)
	rows   []int32   // position → model row; nil: the identity

	// Bounds of the quantization error, over all rows.
	maxScale, maxL1, maxNorm float64
	maxScaleN, maxL1N        float64 // of scale/‖y‖ and ‖y‖₁/‖y‖ (cosine)

	// Cells; a flat index has one holding every row.
	starts    []int32   // len cells+1: cell c is positions starts[c]..starts[c+1]
	centroids []float32 // cells × f
	radius    []float32 // per cell: max ‖y − c‖
	unit      []float32 // cells × f: c/‖c‖
	uradius   []float32 // per cell: max ‖ŷ − ĉ‖ over non-zero rows
	hasZero   []bool    // the cell holds a zero row (cosine 0)
	// qradius and quradius are the radiusQuantile quantiles of the same
	// distances: the "likely" bound that extends a probe (see Top).
	qradius, quradius []float32

	kernel kernelKind
}

// Flat returns an index without cells over m: every search scores every row
// from the codes and re-ranks exactly, so its answers equal the float32
// scan's.
func Flat(m *mf.Model) *Index {
	n := m.NumItems()
	return build(m, nil, []int32{0, int32(n)}, make([]float32, m.Factors()))
}

// build quantizes m's rows in the order rows (nil: model order) into cells
// starting at starts, with the given centroids.
func build(m *mf.Model, rows []int32, starts []int32, centroids []float32) *Index {
	n, f := m.NumItems(), m.Factors()
	ix := &Index{m: m, f: f, stride: strideFor(f), rows: rows, starts: starts, centroids: centroids, kernel: bestKernel()}
	ix.codes = make([]uint8, n*ix.stride)
	ix.scale = make([]float32, n)
	ix.invn = make([]float32, n)
	for p := range n {
		r := ix.row(int32(p))
		y := m.Vector(r)
		s := quantizeRow(y, ix.codes[p*ix.stride:(p+1)*ix.stride])
		ix.scale[p] = s
		var l1 float64
		for _, v := range y {
			l1 += float64(abs32(v))
		}
		nr := float64(m.Norm(r))
		ix.maxScale = max(ix.maxScale, float64(s))
		ix.maxL1 = max(ix.maxL1, l1)
		ix.maxNorm = max(ix.maxNorm, nr)
		if nr > 0 {
			ix.invn[p] = float32(1 / nr)
			ix.maxScaleN = max(ix.maxScaleN, float64(s)/nr)
			ix.maxL1N = max(ix.maxL1N, l1/nr)
		}
	}
	ix.cellBounds()
	return ix
}

// cellBounds computes each cell's radius, unit centroid and unit radius.
func (ix *Index) cellBounds() {
	cells, f, m := len(ix.starts)-1, ix.f, ix.m
	ix.radius = make([]float32, cells)
	ix.unit = make([]float32, cells*f)
	ix.uradius = make([]float32, cells)
	ix.hasZero = make([]bool, cells)
	ix.qradius = make([]float32, cells)
	ix.quradius = make([]float32, cells)
	var ds, uds []float64
	for c := range cells {
		ds, uds = ds[:0], uds[:0]
		cen := ix.centroids[c*f : (c+1)*f]
		unit := ix.unit[c*f : (c+1)*f]
		var cn float64
		for _, v := range cen {
			cn += float64(v) * float64(v)
		}
		if cn = math.Sqrt(cn); cn > 0 {
			for j, v := range cen {
				unit[j] = float32(float64(v) / cn)
			}
		}
		var r, ur float64
		for p := ix.starts[c]; p < ix.starts[c+1]; p++ {
			row := ix.row(p)
			y := m.Vector(row)
			nr := float64(m.Norm(row))
			var d, ud float64
			for j, v := range y {
				e := float64(v) - float64(cen[j])
				d += e * e
				if nr > 0 {
					ue := float64(v)/nr - float64(unit[j])
					ud += ue * ue
				}
			}
			r = max(r, d)
			ds = append(ds, d)
			if nr > 0 {
				ur = max(ur, ud)
				uds = append(uds, ud)
			} else {
				ix.hasZero[c] = true
			}
		}
		// Rounded up a little: the bounds must hold despite float error.
		ix.radius[c] = float32(math.Sqrt(r)*(1+1e-5) + 1e-6)
		ix.uradius[c] = float32(math.Sqrt(ur)*(1+1e-5) + 1e-6)
		ix.qradius[c] = float32(math.Sqrt(quantile(ds, radiusQuantile)))
		ix.quradius[c] = float32(math.Sqrt(quantile(uds, radiusQuantile)))
	}
}

// radiusQuantile is the share of a cell's rows within its likely radius.
const radiusQuantile = 0.9

// quantile is the q-quantile of xs (sorts xs), 0 for none.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[min(len(xs)-1, int(q*float64(len(xs))))]
}

// row is the model row at position p.
func (ix *Index) row(p int32) int32 {
	if ix.rows == nil {
		return p
	}
	return ix.rows[p]
}

// Model is the model the index was built for.
func (ix *Index) Model() *mf.Model { return ix.m }

// Cells is the number of cells (1 for a flat index).
func (ix *Index) Cells() int { return len(ix.starts) - 1 }

// Bytes is the memory the index holds beyond the model: codes, scales,
// inverse norms, the position map and the cells.
func (ix *Index) Bytes() int64 {
	return int64(len(ix.codes)) + 4*int64(len(ix.scale)+len(ix.invn)+len(ix.rows)+len(ix.starts)) +
		4*int64(len(ix.centroids)+len(ix.radius)+len(ix.unit)+len(ix.uradius)) + int64(len(ix.hasZero))
}

// DefaultProbe is the number of cells a search probes at least when the
// caller does not say: a quarter of them, at least one.
func (ix *Index) DefaultProbe() int { return max(1, ix.Cells()/4) }

// ExtendFactor bounds the adaptive part of a probe: past its Probe cells a
// search goes on, up to ExtendFactor × Probe cells, through the cells whose
// likely bound (centroid score plus the radius that holds 90 % of the
// cell's rows) still reaches the k-th score found.
const ExtendFactor = 2

// Query describes one search.
type Query struct {
	// X is the query vector (len Factors, finite).
	X []float32
	// Cosine ranks by cosine similarity y·x/(‖x‖‖y‖), zero rows scoring 0,
	// with ‖x‖ = Norm: the scores of mf.Model.Cosine.
	Cosine bool
	Norm   float32
	// Probe is how many cells are probed when they do not prove the answer
	// earlier; 0: DefaultProbe; at least Cells: every cell (exact). Past
	// it, up to ExtendFactor × Probe cells are probed while their likely
	// bound reaches the k-th score (NoExtend: never).
	Probe    int
	NoExtend bool
}

// Search is one request's search state; reuse it across requests (its
// buffers stay). The zero value is ready for Start.
type Search struct {
	ix     *Index
	x      []float32
	cosine bool
	qnorm  float32
	q      query
	eps    float32 // bound of |approx − exact| for every row

	approx  []float32 // per position, valid in scanned cells
	raw     []int32   // kernel output of one chunk
	order   []int32   // cells in probe order
	cells   []orderedCell
	keys    []uint64 // sortCells' buffers
	sortIdx []int32
	byScore []int32   // indexes of cells by score (in sortIdx)
	cbound  []float32 // upper bound of each cell of order
	qbound  []float32 // likely bound of each cell of order
	scanned []bool    // per order index
	cmax    []float32 // per order index: the largest approx of a scanned cell
	// pending marks the cells of the first round, counted as scanned, whose
	// codes are scored only when a selection needs their rows (lazy):
	// while the heap's bar is above the cell's bound, none of its rows
	// could enter it, so they are not scored (selectScanned).
	pending []bool
	nScan   int // cells scanned
	cursor  int // cells of order visited (scanned or skipped by bound)
	probe   int
	extend  int // the adaptive probe's cap

	heap  topk.Heap
	cands []topk.Entry
	res   topk.Heap
	// Within one Top call (its after and admit fixed), cands are the best
	// selM approximate rows of the cells marked in selIn: a round adds the
	// cells scanned since instead of selecting over every scanned row again.
	selM  int
	selIn []bool // per order index
	// plan are the order indexes of the cells planned for the next scan
	// (marked scanned already: see step).
	plan []int32
}

// chunk is how many rows a kernel call scores (its output stays in L1).
const chunk = 2048

// Start prepares s for queries against ix. q.X must stay unchanged until the
// last Top call of this search.
func (ix *Index) Start(s *Search, q Query) error {
	if len(q.X) != ix.f {
		return fmt.Errorf("itemindex: query has %d values, the model %d factors", len(q.X), ix.f)
	}
	for _, v := range q.X {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("itemindex: query value %v is not finite", v)
		}
	}
	s.ix, s.x, s.cosine, s.qnorm = ix, q.X, q.Cosine, q.Norm
	s.q.set(q.X, ix.stride)
	s.eps = ix.errorBound(&s.q, q.Cosine, q.Norm)
	n, cells := ix.m.NumItems(), ix.Cells()
	if cap(s.approx) < n {
		s.approx = make([]float32, n)
	}
	s.approx = s.approx[:n]
	if cap(s.raw) < chunk {
		s.raw = make([]int32, chunk)
	}
	s.order, s.cbound, s.qbound = s.order[:0], s.cbound[:0], s.qbound[:0]
	s.scanned = slices.Grow(s.scanned[:0], cells)[:cells]
	clear(s.scanned)
	s.cmax = slices.Grow(s.cmax[:0], cells)[:cells]
	s.pending = slices.Grow(s.pending[:0], cells)[:cells]
	clear(s.pending)
	s.nScan, s.cursor = 0, 0
	s.probe = q.Probe
	if s.probe <= 0 {
		s.probe = ix.DefaultProbe()
	}
	s.probe = min(s.probe, cells)
	s.extend = s.probe
	if !q.NoExtend {
		s.extend = min(ExtendFactor*s.probe, cells)
	}
	ix.orderCells(s)
	return nil
}

// errorBound bounds |approx − exact| of any row for the query q: with
// y_j = s·c_j + e_j, |e_j| ≤ s/2 and x_j = t·d_j + g_j, |g_j| ≤ t/2,
// |y·x − s·t·Σc_j·d_j| ≤ t/2·‖y‖₁ + s/2·‖x‖₁ + f·s·t/4, plus the float32
// rounding of both sides; for cosine, the same divided by ‖x‖‖y‖.
func (ix *Index) errorBound(q *query, cosine bool, qnorm float32) float32 {
	t, f := float64(q.scale), float64(ix.f)
	round := (f + 8) * 0x1p-23
	var e float64
	if !cosine {
		e = t/2*ix.maxL1 + ix.maxScale/2*q.l1 + f*ix.maxScale*t/4 + round*ix.maxNorm*q.norm
	} else if qn := float64(qnorm); qn > 0 {
		e = (t/2*ix.maxL1N+ix.maxScaleN/2*q.l1+f*ix.maxScaleN*t/4)/qn + round*(1+q.norm/qn) + 0x1p-20
	} else {
		e = 0x1p-20
	}
	return float32(e * (1 + 1e-5))
}

// orderedCell is a cell in a search's probe order.
type orderedCell struct {
	c      int32
	score  float64
	bound  float32
	likely float32
}

// orderCells sorts the non-empty cells by centroid score, best first, and
// computes their upper bounds.
func (ix *Index) orderCells(s *Search) {
	f := ix.f
	qn := s.q.norm
	round := float64(f+8) * 0x1p-23
	cells := s.cells[:0]
	for c := range ix.Cells() {
		if ix.starts[c] == ix.starts[c+1] {
			continue
		}
		cen, unit := ix.centroids[c*f:(c+1)*f], ix.unit[c*f:(c+1)*f]
		var score, bound, likely float64
		if !s.cosine {
			// Only the score in use is computed (the other's product
			// would be thrown away).
			var dot float64
			for j, v := range s.x[:f] {
				dot += float64(v) * float64(cen[j])
			}
			score = dot
			bound = dot + float64(ix.radius[c])*qn + round*ix.maxNorm*qn
			likely = dot + float64(ix.qradius[c])*qn
		} else {
			var udot float64
			for j, v := range s.x[:f] {
				udot += float64(v) * float64(unit[j])
			}
			if s.qnorm > 0 {
				score = udot / float64(s.qnorm)
			}
			bound = score + float64(ix.uradius[c]) + round*2 + 0x1p-20
			likely = score + float64(ix.quradius[c])
			if ix.hasZero[c] {
				bound = max(bound, 0)
			}
		}
		cells = append(cells, orderedCell{int32(c), score, float32(bound * (1 + 1e-6)), float32(likely)})
	}
	s.cells = cells
	s.sortCells()
	for _, i := range s.byScore {
		c := &cells[i]
		s.order = append(s.order, c.c)
		s.cbound = append(s.cbound, c.bound)
		s.qbound = append(s.qbound, c.likely)
	}
	s.scanned = s.scanned[:len(cells)]
	s.probe = min(s.probe, len(cells))
	s.extend = min(s.extend, len(cells))
}

// sortCells leaves in s.byScore the indexes of s.cells by score, best
// first, ties by the lower cell: the order of comparing scores then cells,
// computed as a stable least-significant-digit radix sort of the scores'
// bits (the cells are in cell order already, so ties keep it), which costs
// a few passes of cheap moves where a comparison sort calls its comparator
// ~n·log n times.
func (s *Search) sortCells() {
	n := len(s.cells)
	s.keys = slices.Grow(s.keys[:0], 2*n)[:2*n]
	s.sortIdx = slices.Grow(s.sortIdx[:0], 2*n)[:2*n]
	keys, tmpKeys := s.keys[:n], s.keys[n:]
	idx, tmpIdx := s.sortIdx[:n], s.sortIdx[n:]
	s.byScore = idx
	if n == 0 {
		return
	}
	for i, c := range s.cells {
		keys[i] = descendingKey(c.score)
		idx[i] = int32(i)
	}
	var count [256]int
	for shift := 0; shift < 64; shift += 8 {
		clear(count[:])
		for _, k := range keys {
			count[byte(k>>shift)]++
		}
		if count[byte(keys[0]>>shift)] == n {
			continue // every key has this digit: the pass would not move any
		}
		sum := 0
		for d, c := range count {
			count[d] = sum
			sum += c
		}
		for i, k := range keys {
			d := byte(k >> shift)
			tmpKeys[count[d]], tmpIdx[count[d]] = k, idx[i]
			count[d]++
		}
		keys, tmpKeys = tmpKeys, keys
		idx, tmpIdx = tmpIdx, idx
	}
	s.byScore = idx
}

// descendingKey maps a finite score to a key whose ascending order is the
// scores' descending order (−0 and +0 the same key, as they compare
// equal).
func descendingKey(score float64) uint64 {
	if score == 0 {
		score = 0
	}
	u := math.Float64bits(score)
	if u>>63 != 0 {
		u = ^u
	} else {
		u |= 1 << 63
	}
	return ^u
}

// scan scores the rows of the cell at order index oi from the codes.
func (s *Search) scan(oi int) {
	ix := s.ix
	c := s.order[oi]
	mul := s.q.scale
	if s.cosine {
		if s.qnorm > 0 {
			mul /= s.qnorm
		} else {
			mul = 0
		}
	}
	var invn []float32
	if s.cosine {
		invn = ix.invn
	}
	top := float32(math.Inf(-1))
	for p0 := int(ix.starts[c]); p0 < int(ix.starts[c+1]); p0 += chunk {
		p1 := min(p0+chunk, int(ix.starts[c+1]))
		var inv []float32
		if invn != nil {
			inv = invn[p0:p1]
		}
		top = max(top, scores(ix.kernel, ix.codes[p0*ix.stride:p1*ix.stride], ix.stride, &s.q, mul, ix.scale[p0:p1], inv, s.approx[p0:p1], s.raw))
	}
	s.cmax[oi] = top
	s.pending[oi] = false
}

// Exact is the exact score of model row r for the started query, as the
// answers of Top carry it (a row Top did not return, too).
func (s *Search) Exact(r int32) float32 { return s.exact(r) }

// exact is the exact score of model row r, computed as mf.Model.Scores
// (dot) or mf.Model.Cosine (cosine) compute it.
func (s *Search) exact(r int32) float32 {
	m := s.ix.m
	// The row is the first operand, as in Scores' matrix-vector product:
	// gonum's dot kernel sums in an order that depends on it.
	sc := blas32.Dot(blas32.Vector{N: len(s.x), Inc: 1, Data: m.Vector(r)}, blas32.Vector{N: len(s.x), Inc: 1, Data: s.x})
	if !s.cosine {
		return sc
	}
	if d := s.qnorm * m.Norm(r); d > 0 {
		return sc / d
	}
	return 0
}

// Top appends to dst the k best model rows that admit accepts (nil: all)
// and that rank strictly below after (nil: no bound; ranking is by score,
// then by the lower row), best first, with their exact scores. Within the
// cells it scans the answer is the exact one; it probes cells until the
// probe budget is spent or the cells' bounds prove the answer exact, then,
// up to the adaptive cap, the cells whose likely bound reaches the k-th
// score, and beyond the budget while fewer than k rows were found.
func (s *Search) Top(k int, after *topk.Entry, admit func(row int32) bool, dst []topk.Entry) []topk.Entry {
	if k <= 0 || len(s.order) == 0 {
		return dst
	}
	s.begin()
	s.scanPlanned()
	for s.step(k, after, admit) {
		s.scanPlanned()
	}
	return s.res.Sorted(dst)
}

// begin starts a Top call: its first round's cells (a quarter of the probe
// for a search nothing was scanned for yet) are planned.
func (s *Search) begin() {
	s.selM = 0 // another after or admit than the last call's
	s.plan = s.plan[:0]
	if s.nScan == 0 {
		s.firstRound()
	}
}

// firstRound counts the first quarter of the probe (at least one cell)
// scanned, whatever their bounds, and leaves their scoring pending.
func (s *Search) firstRound() {
	for done := 0; s.cursor < s.probe && done < max(1, s.probe/4); {
		oi := s.cursor
		s.cursor++
		if s.scanned[oi] {
			continue
		}
		s.scanned[oi], s.pending[oi] = true, true
		s.nScan++
		done++
	}
}

// step is one round of a Top call after its planned cells were scanned:
// it selects over the scanned cells and plans the cells the next round
// scans, and reports whether there is a next round. A round's plan is
// fixed before any of its cells is scanned (what it plans depends on the
// rounds before only), so searches can scan their plans together
// (TopBlock) and answer as alone.
func (s *Search) step(k int, after *topk.Entry, admit func(int32) bool) bool {
	s.plan = s.plan[:0]
	full := s.selectScanned(k, after, admit)
	if full {
		kth, _ := s.res.Worst()
		if s.cursor >= s.probe {
			return s.extendProbe(kth.Score)
		}
		s.visit(max(1, s.nScan), kth.Score)
		return true
	}
	if s.nScan == len(s.order) {
		return false
	}
	s.expand(max(1, s.nScan))
	return true
}

// planScan marks the cell at order index oi scanned and plans its scan.
func (s *Search) planScan(oi int) {
	s.scanned[oi] = true
	s.nScan++
	s.plan = append(s.plan, int32(oi))
}

// scanPlanned scans the planned cells.
func (s *Search) scanPlanned() {
	for _, oi := range s.plan {
		s.scan(int(oi))
	}
	s.plan = s.plan[:0]
}

// visit plans up to n more cells of the probe budget in probe order,
// skipping (leaving unscanned) those whose bound is below kth.
func (s *Search) visit(n int, kth float32) {
	for done := 0; s.cursor < s.probe && done < n; {
		oi := s.cursor
		s.cursor++
		if s.scanned[oi] || s.cbound[oi] < kth {
			continue
		}
		s.planScan(oi)
		done++
	}
}

// extendProbe plans, up to the adaptive cap, the next cells (a few per
// round: each round re-selects over every scanned row) whose likely and
// proven bounds reach kth, and reports whether it planned any.
func (s *Search) extendProbe(kth float32) bool {
	n := max(1, s.nScan/4)
	done := 0
	for s.cursor < s.extend && done < n {
		oi := s.cursor
		s.cursor++
		if s.scanned[oi] || s.cbound[oi] < kth || s.qbound[oi] < kth {
			continue
		}
		s.planScan(oi)
		done++
	}
	return done > 0
}

// expand plans n more unscanned cells in probe order, whatever their bound
// (the filter left fewer than k rows in those scanned).
func (s *Search) expand(n int) {
	done := 0
	for oi := range s.order {
		if done == n {
			break
		}
		if !s.scanned[oi] {
			s.planScan(oi)
			done++
		}
	}
	for s.cursor < len(s.order) && s.scanned[s.cursor] {
		s.cursor++
	}
}

// selectScanned fills s.res with the exact k best admitted rows below after
// among the scanned cells and reports whether it found k.
func (s *Search) selectScanned(k int, after *topk.Entry, admit func(int32) bool) bool {
	ix, eps := s.ix, s.eps
	cut := float32(math.Inf(1)) // rows whose approx is above cut rank above after
	if after != nil {
		cut = after.Score + 2*eps
	}
	m := max(2*k+16, s.selM, 64)
	for {
		h := &s.heap
		h.Reset(m)
		if s.selM == m {
			// The best m of the cells selected before, plus the new ones.
			for _, c := range s.cands {
				h.Push(c.Row, c.Score)
			}
		} else {
			s.selM = m
			s.selIn = slices.Grow(s.selIn[:0], len(s.order))[:len(s.order)]
			clear(s.selIn)
		}
		for oi, c := range s.order {
			if !s.scanned[oi] || s.selIn[oi] {
				continue
			}
			s.selIn[oi] = true
			if w, ok := h.Worst(); ok && h.Full() {
				// No row of the cell can enter the heap: its largest
				// approximate score, or for a cell not scored yet its
				// bound plus the quantization error, is below the bar.
				if s.pending[oi] && float64(s.cbound[oi])+float64(s.eps) < float64(w.Score) {
					continue
				}
				if !s.pending[oi] && s.cmax[oi] < w.Score {
					continue
				}
			}
			if s.pending[oi] {
				s.scan(oi)
			}
			p0, p1 := ix.starts[c], ix.starts[c+1]
			for p, a := range s.approx[p0:p1] {
				if a > cut || !h.Accepts(a) {
					continue
				}
				pos := p0 + int32(p)
				if admit != nil && !admit(ix.row(pos)) {
					continue
				}
				h.Push(pos, a)
			}
		}
		s.cands = h.Sorted(s.cands[:0])
		res := &s.res
		res.Reset(k)
		proven := false
		for _, c := range s.cands {
			if w, ok := res.Worst(); ok && res.Full() && c.Score+eps < w.Score {
				proven = true // no row left can reach the k-th score
				break
			}
			r := ix.row(c.Row)
			e := s.exact(r)
			if after != nil && !(e < after.Score || (e == after.Score && r > after.Row)) {
				continue
			}
			res.Push(r, e)
		}
		if proven || len(s.cands) < m {
			return res.Full()
		}
		if w, ok := res.Worst(); ok && res.Full() && s.cands[len(s.cands)-1].Score+eps < w.Score {
			return true
		}
		m *= 4
	}
}

// StartBlock starts the searches ss[i] for the queries qs[i], as Start
// does one by one, and counts each search's first round (the first quarter
// of its probe, in its probe order, whatever the bounds) scanned with its
// scoring pending: a first-round cell is scored only when a selection
// finds that its bound could reach the heap's bar (a cell of another group
// than the query's often cannot). Top then answers each search exactly as
// after Start alone: the same rows, scores and order.
func (ix *Index) StartBlock(ss []*Search, qs []Query) error {
	if len(ss) != len(qs) {
		return fmt.Errorf("itemindex: %d searches for %d queries", len(ss), len(qs))
	}
	for i, s := range ss {
		if err := ix.Start(s, qs[i]); err != nil {
			return err
		}
		s.plan = s.plan[:0]
		if len(s.order) > 0 {
			s.firstRound()
		}
	}
	return nil
}

// TopBlock makes, for every search ss[i] (started, all on the same index),
// the call ss[i].Top(ks[i], nil, admits[i], dst[i][:0]) and stores its
// answer in dst[i] — the rounds of all of them together: each round's
// planned cells are scanned cell by cell for every search that planned the
// cell (as StartBlock's first round), so a cell is read once per round for
// the block. Each search is left as that Top call leaves it (a next page
// scans as it would after Top alone); the answers are Top's: the same
// rows, scores and order.
func TopBlock(ss []*Search, ks []int, admits []func(row int32) bool, dst [][]topk.Entry) {
	active := make([]*Search, 0, len(ss))
	act := make([]int, 0, len(ss))
	for i, s := range ss {
		dst[i] = dst[i][:0]
		if ks[i] <= 0 || len(s.order) == 0 {
			continue
		}
		s.begin()
		active, act = append(active, s), append(act, i)
	}
	for len(active) > 0 {
		scanTogether(active)
		w := 0
		for j, s := range active {
			i := act[j]
			if s.step(ks[i], nil, admits[i]) {
				active[w], act[w] = s, i
				w++
			} else {
				dst[i] = s.res.Sorted(dst[i])
			}
		}
		active, act = active[:w], act[:w]
	}
}

// scanTogether scans every search's planned cells, cell by cell (in cell
// order) for all the searches that planned a cell, and empties the plans.
func scanTogether(ss []*Search) {
	type visit struct{ cell, search, oi int32 }
	var visits []visit
	for i, s := range ss {
		for _, oi := range s.plan {
			visits = append(visits, visit{s.order[oi], int32(i), oi})
		}
		s.plan = s.plan[:0]
	}
	slices.SortFunc(visits, func(a, b visit) int {
		if a.cell != b.cell {
			return int(a.cell - b.cell)
		}
		return int(a.search - b.search)
	})
	for _, v := range visits {
		ss[v.search].scan(int(v.oi))
	}
}
