package blend

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/topk"
)

// Section kinds and the payload version of the "blend" section.
const (
	KindNeighbors   = "neighbors"
	KindTransitions = "transitions"
	KindBlend       = "blend"
	paramsVersion   = 1
	paramsBytes     = 32
)

// MaxLast bounds how many recent items feed a term.
const MaxLast = 64

// Params are the blend's weights (see the package comment).
type Params struct {
	Neighbor   float32 // W_n; 0 leaves the neighbour term out
	Transition float32 // W_t; 0 leaves the transition term out
	// Recency β: the fold-in strength of the k-th newest item is multiplied
	// by 1 + β·RecencyDecay^k; 0 leaves the fold-in as trained.
	Recency      float32
	RecencyDecay float32 // ρ in [0, 1]
	// NeighborLast items (newest first) feed the neighbour term, the k-th
	// with weight NeighborDecay^k.
	NeighborLast  uint32
	NeighborDecay float32
	// TransitionLast items feed the transition term, the k-th with weight
	// TransitionDecay^k.
	TransitionLast  uint32
	TransitionDecay float32
}

// DefaultParams are the decays and depths the trainer starts from: the
// neighbours of the 10 newest items fading by 0.8, transitions from the 3
// newest fading by 0.5, recency fading by 0.5 per position; no weights.
func DefaultParams() Params {
	return Params{RecencyDecay: 0.5, NeighborLast: 10, NeighborDecay: 0.8, TransitionLast: 3, TransitionDecay: 0.5}
}

// NeighborsOnly are the weights of a pure item-neighbour model: the
// neighbour term at its maximum weight over the MaxLast newest items,
// unfaded, so MF only orders the items no neighbour list reaches and
// breaks ties.
func NeighborsOnly() Params {
	p := DefaultParams()
	p.Neighbor, p.NeighborLast, p.NeighborDecay = 1000, MaxLast, 1
	return p
}

// Validate checks the ranges the format allows.
func (p Params) Validate() error {
	fin := func(v float32) bool { return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) }
	switch {
	case !fin(p.Neighbor) || p.Neighbor < 0 || p.Neighbor > 1000:
		return fmt.Errorf("neighbour weight %v must be within 0..1000", p.Neighbor)
	case !fin(p.Transition) || p.Transition < 0 || p.Transition > 1000:
		return fmt.Errorf("transition weight %v must be within 0..1000", p.Transition)
	case !fin(p.Recency) || p.Recency < 0 || p.Recency > 1000:
		return fmt.Errorf("recency %v must be within 0..1000", p.Recency)
	case !(p.RecencyDecay >= 0 && p.RecencyDecay <= 1):
		return fmt.Errorf("recency decay %v must be within 0..1", p.RecencyDecay)
	case !(p.NeighborDecay >= 0 && p.NeighborDecay <= 1):
		return fmt.Errorf("neighbour decay %v must be within 0..1", p.NeighborDecay)
	case !(p.TransitionDecay >= 0 && p.TransitionDecay <= 1):
		return fmt.Errorf("transition decay %v must be within 0..1", p.TransitionDecay)
	case p.NeighborLast < 1 || p.NeighborLast > MaxLast:
		return fmt.Errorf("neighbour depth %d must be within 1..%d", p.NeighborLast, MaxLast)
	case p.TransitionLast < 1 || p.TransitionLast > MaxLast:
		return fmt.Errorf("transition depth %d must be within 1..%d", p.TransitionLast, MaxLast)
	}
	return nil
}

func (p Params) encode() []byte {
	b := make([]byte, 0, paramsBytes)
	for _, v := range []uint32{
		math.Float32bits(p.Neighbor), math.Float32bits(p.Transition),
		math.Float32bits(p.Recency), math.Float32bits(p.RecencyDecay),
		p.NeighborLast, math.Float32bits(p.NeighborDecay),
		p.TransitionLast, math.Float32bits(p.TransitionDecay),
	} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	return b
}

func decodeParams(b []byte) (Params, error) {
	if len(b) != paramsBytes {
		return Params{}, fmt.Errorf("%w %q: %d bytes, want %d", ErrCorrupt, KindBlend, len(b), paramsBytes)
	}
	u := func(k int) uint32 { return binary.LittleEndian.Uint32(b[4*k:]) }
	f := func(k int) float32 { return math.Float32frombits(u(k)) }
	p := Params{Neighbor: f(0), Transition: f(1), Recency: f(2), RecencyDecay: f(3),
		NeighborLast: u(4), NeighborDecay: f(5), TransitionLast: u(6), TransitionDecay: f(7)}
	if err := p.Validate(); err != nil {
		return Params{}, fmt.Errorf("%w %q: %w", ErrCorrupt, KindBlend, err)
	}
	return p, nil
}

// Blend is a model's blend: its lists, its weights and the MF statistics
// the standardization needs. It is immutable and safe for concurrent use.
type Blend struct {
	params      Params
	neighbors   *Lists // nil when the model has none
	transitions *Lists
	items       int
	f           int
	mean        []float64 // ȳ, the mean item vector
	second      []float64 // YᵀY / n (f×f, row-major)
}

// New checks the parts and derives the MF statistics of m. A list set may
// be nil when its weight is 0.
func New(m *mf.Model, neighbors, transitions *Lists, p Params) (*Blend, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("blend: %w", err)
	}
	n := m.NumItems()
	for _, c := range []struct {
		name string
		l    *Lists
		w    float32
	}{{KindNeighbors, neighbors, p.Neighbor}, {KindTransitions, transitions, p.Transition}} {
		if c.l == nil {
			if c.w != 0 {
				return nil, fmt.Errorf("blend: weight %v for %s but no lists", c.w, c.name)
			}
			continue
		}
		if c.l.Len() != n {
			return nil, fmt.Errorf("blend: %s for %d items, the model has %d", c.name, c.l.Len(), n)
		}
	}
	f := m.Factors()
	b := &Blend{params: p, neighbors: neighbors, transitions: transitions, items: n, f: f,
		mean: make([]float64, f), second: m.Gram()}
	// The MF statistics are the trained rows' (those m.Gram is of).
	y := m.Matrix()[:m.BaseItems()*f]
	for off := 0; off+f <= len(y); off += f {
		for d, v := range y[off : off+f] {
			b.mean[d] += float64(v)
		}
	}
	inv := 1 / float64(m.BaseItems())
	for d := range b.mean {
		b.mean[d] *= inv
	}
	sec := make([]float64, len(b.second))
	for k, v := range b.second {
		sec[k] = v * inv
	}
	b.second = sec
	return b, nil
}

// Params returns the weights.
func (b *Blend) Params() Params { return b.params }

// Sections returns the artifact sections that carry b; FromModel reads them
// back.
func (b *Blend) Sections() []mf.Section {
	s := []mf.Section{{Kind: KindBlend, Version: paramsVersion, Data: b.params.encode()}}
	if b.neighbors != nil {
		s = append(s, mf.Section{Kind: KindNeighbors, Version: listsVersion, Data: appendLists(nil, b.neighbors)})
	}
	if b.transitions != nil {
		s = append(s, mf.Section{Kind: KindTransitions, Version: listsVersion, Data: appendLists(nil, b.transitions)})
	}
	return s
}

// ErrNoBlend means the model carries no "blend" section.
var ErrNoBlend = errors.New("the model has no blend")

// FromModel reads m's blend sections. A model without a "blend" section
// returns ErrNoBlend; a damaged or unknown-version section, or lists a
// nonzero weight needs that are missing, an error wrapping ErrCorrupt.
func FromModel(m *mf.Model) (*Blend, error) {
	ps, ok := m.Section(KindBlend)
	if !ok {
		return nil, ErrNoBlend
	}
	if ps.Version != paramsVersion {
		return nil, fmt.Errorf("%w %q: version %d, this server reads %d", ErrCorrupt, KindBlend, ps.Version, paramsVersion)
	}
	p, err := decodeParams(ps.Data)
	if err != nil {
		return nil, err
	}
	read := func(kind string) (*Lists, error) {
		s, ok := m.Section(kind)
		if !ok {
			return nil, nil
		}
		if s.Version != listsVersion {
			return nil, fmt.Errorf("%w %q: version %d, this server reads %d", ErrCorrupt, kind, s.Version, listsVersion)
		}
		l, err := decodeLists(kind, s.Data, m.BaseItems())
		if err != nil {
			return nil, err
		}
		// Items the server added after training (mf.Model.WithExtraItems)
		// have no lists of their own.
		for range m.NumItems() - m.BaseItems() {
			l.Ptr = append(l.Ptr, l.Ptr[len(l.Ptr)-1])
		}
		return l, nil
	}
	nb, err := read(KindNeighbors)
	if err != nil {
		return nil, err
	}
	tr, err := read(KindTransitions)
	if err != nil {
		return nil, err
	}
	b, err := New(m, nb, tr, p)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return b, nil
}

// RecencyWeights multiplies the strengths of a user's items, newest first,
// by the recency factor 1 + β·ρ^k in place.
func (b *Blend) RecencyWeights(weights []float64) { b.params.RecencyWeights(weights) }

// RecencyWeights multiplies the strengths of a user's items, newest first,
// by the recency factor 1 + β·ρ^k in place.
func (p Params) RecencyWeights(weights []float64) {
	if p.Recency == 0 {
		return
	}
	beta, rho := float64(p.Recency), float64(p.RecencyDecay)
	f := 1.0
	for k := range weights {
		weights[k] *= 1 + beta*f
		f *= rho
	}
}

// Scratch holds one scoring's sparse accumulators; not safe for concurrent
// use, pool them.
type Scratch struct {
	nb, tr       []float32 // dense, zero outside the touched items
	touched      []int32
	in           []bool // in[j]: j is in touched
	nbSum, nbSq  float64
	trSum, trSq  float64
	mfMean, mfSd float64
	nbSd, trSd   float64
	nbMean       float64
	trMean       float64

	// Top's state: the touched items' blended scores (once per Prepare),
	// its heap and the MF candidates.
	touchedTop []topk.Entry
	ready      bool
	heap       topk.Heap
	mf         []topk.Entry
}

func (s *Scratch) size(n int) {
	if cap(s.nb) < n {
		s.nb, s.tr, s.in = make([]float32, n), make([]float32, n), make([]bool, n)
	}
	s.nb, s.tr, s.in = s.nb[:n], s.tr[:n], s.in[:n]
}

// Prepare computes the sparse terms of a user whose items are recent
// (rows, newest first) and whose folded-in vector is x, and the
// standardization of all three terms. Score, Finish or Touched then use
// them; Release must follow before s is used for another user.
func (b *Blend) Prepare(s *Scratch, x []float32, recent []int32) {
	s.size(b.items)
	s.touched = s.touched[:0]
	s.ready = false
	p := b.params
	add := func(l *Lists, depth uint32, decay float32, acc []float32) {
		if l == nil {
			return
		}
		w := float32(1)
		for k, r := range recent {
			if k >= int(depth) {
				break
			}
			items, ws := l.Of(r)
			for a, j := range items {
				if !s.in[j] {
					s.in[j] = true
					s.touched = append(s.touched, j)
				}
				acc[j] += w * ws[a]
			}
			w *= decay
		}
	}
	if p.Neighbor != 0 {
		add(b.neighbors, p.NeighborLast, p.NeighborDecay, s.nb)
	}
	if p.Transition != 0 {
		add(b.transitions, p.TransitionLast, p.TransitionDecay, s.tr)
	}
	s.nbSum, s.nbSq, s.trSum, s.trSq = 0, 0, 0, 0
	for _, j := range s.touched {
		a, t := float64(s.nb[j]), float64(s.tr[j])
		s.nbSum += a
		s.nbSq += a * a
		s.trSum += t
		s.trSq += t * t
	}
	n := float64(b.items)
	s.nbMean, s.nbSd = meanSd(s.nbSum, s.nbSq, n)
	s.trMean, s.trSd = meanSd(s.trSum, s.trSq, n)
	// MF: mean = xᵀȳ, E[s²] = xᵀ(YᵀY/n)x.
	var mean, sq float64
	f := b.f
	for d := range f {
		xd := float64(x[d])
		mean += xd * b.mean[d]
		row := b.second[d*f : d*f+f]
		var r float64
		for e, v := range row {
			r += v * float64(x[e])
		}
		sq += xd * r
	}
	s.mfMean, s.mfSd = mean, math.Sqrt(max(sq-mean*mean, 0))
	if !(s.mfSd > 1e-12) {
		s.mfSd = 1
	}
}

// meanSd is the mean and standard deviation of n values with the given sum
// and sum of squares; a term that is constant gets sd 0 (left out).
func meanSd(sum, sq, n float64) (float64, float64) {
	m := sum / n
	v := sq/n - m*m
	if !(v > 1e-24) {
		return m, 0
	}
	return m, math.Sqrt(v)
}

// Touched returns the items the sparse terms touched (valid until Release):
// a serving index adds them to its MF candidates.
func (s *Scratch) Touched() []int32 { return s.touched }

// coefficients turn the raw terms into the blended score: mfScale·mf +
// offset + nbScale·n + trScale·t.
func (b *Blend) coefficients(s *Scratch) (mfScale, offset, nbScale, trScale float64) {
	return s.coefficients(b.params.Neighbor, b.params.Transition)
}

func (s *Scratch) coefficients(wn, wt float32) (mfScale, offset, nbScale, trScale float64) {
	mfScale = 1 / s.mfSd
	offset = -s.mfMean * mfScale
	if s.nbSd > 0 {
		nbScale = float64(wn) / s.nbSd
		offset -= nbScale * s.nbMean
	}
	if s.trSd > 0 {
		trScale = float64(wt) / s.trSd
		offset -= trScale * s.trMean
	}
	return mfScale, offset, nbScale, trScale
}

// Score is item j's blended score given its MF score y_jᵀx (after
// Prepare).
func (b *Blend) Score(s *Scratch, j int32, mfScore float32) float32 {
	ms, off, ns, ts := b.coefficients(s)
	return float32(float64(mfScore)*ms + off + ns*float64(s.nb[j]) + ts*float64(s.tr[j]))
}

// Finish turns out, the MF scores of every item, into blended scores in
// place (after Prepare).
func (b *Blend) Finish(s *Scratch, out []float32) {
	ms, off, ns, ts := b.coefficients(s)
	nb, tr := s.nb[:len(out)], s.tr[:len(out)]
	for j, v := range out {
		out[j] = float32(float64(v)*ms + off + ns*float64(nb[j]) + ts*float64(tr[j]))
	}
}

// Release clears the sparse accumulators of the last Prepare.
func (s *Scratch) Release() {
	for _, j := range s.touched {
		s.nb[j], s.tr[j], s.in[j] = 0, 0, false
	}
	s.touched = s.touched[:0]
	s.ready = false
}

// Weights is one (W_n, W_t) point of a validation grid.
type Weights struct{ Neighbor, Transition float32 }

// Ranks writes, for every point of grid, the 0-based rank target would get
// among all items but known (sorted) with those weights: the number of other
// items that score at least as high (ties count against the target). b's
// decays and depths are used, and b must have nonzero weights so Prepare
// (called before, with the same s) accumulated both terms. mfScores are the
// MF scores of every item and sorted the same values in increasing order,
// or only the largest of them: with at least k + len(Touched()) +
// len(known) + 1 of them, every rank below k is exact and every other rank
// is k or more (TopScores gives such a slice for much less than a full
// sort).
// It is how a trainer evaluates a whole grid of weights for the cost of one
// fold-in per user: an item no sparse term touched scores an increasing
// function of its MF score, so those are counted by a binary search in
// sorted, and only the touched and known items are looked at one by one.
func (b *Blend) Ranks(s *Scratch, mfScores, sorted []float32, known []int32, target int32, grid []Weights, ranks []int) {
	nb, tr := s.nb[:len(mfScores)], s.tr[:len(mfScores)]
	for g, w := range grid {
		ms, off, ns, ts := s.coefficients(w.Neighbor, w.Transition)
		score := func(j int32) float64 {
			return float64(mfScores[j])*ms + off + ns*float64(nb[j]) + ts*float64(tr[j])
		}
		at := score(target)
		// Every item as if untouched: MF alone, increasing in its score.
		lo, _ := slices.BinarySearchFunc(sorted, at, func(v float32, at float64) int {
			if float64(v)*ms+off >= at {
				return 1
			}
			return -1
		})
		n := len(sorted) - lo
		for _, j := range s.touched {
			base := float64(mfScores[j])*ms + off
			if base >= at {
				n--
			}
			if score(j) >= at {
				n++
			}
		}
		n-- // the target itself
		for _, j := range known {
			if j != target && score(j) >= at {
				n--
			}
		}
		ranks[g] = n
	}
}

// TopScores appends to dst, in increasing order, the largest m of scores
// (all of them when m >= len(scores)): the sorted argument of Ranks. h is
// a reusable heap.
func TopScores(dst []float32, scores []float32, m int, h *topk.Heap, buf []topk.Entry) ([]float32, []topk.Entry) {
	if m >= len(scores) {
		dst = append(dst, scores...)
		slices.Sort(dst)
		return dst, buf
	}
	h.Reset(m)
	for j, v := range scores {
		if h.Accepts(v) {
			h.Push(int32(j), v)
		}
	}
	buf = h.Sorted(buf[:0])
	for k := len(buf) - 1; k >= 0; k-- {
		dst = append(dst, buf[k].Score)
	}
	return dst, buf
}
