package itemindex

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/recsys-dev/recsys/internal/mf"
)

// SectionKind and SectionVersion name the model-artifact section that
// carries the cells (models/README.md describes its bytes). The codes are
// not stored: quantizing is a pass over the factors at load.
const (
	SectionKind    = "ivf"
	SectionVersion = 1
)

// ErrSection marks an "ivf" section that cannot describe the model.
var ErrSection = errors.New("bad ivf section")

// IVFOptions tune the k-means partition; zero fields get defaults.
type IVFOptions struct {
	Cells      int    // default √items
	Iterations int    // Lloyd iterations on the sample, default 6
	Sample     int    // rows the centroids are trained on, default 64 per cell
	Seed       uint64 // the sample and the initial centroids
}

// BuildIVF partitions m's items into k-means cells (Lloyd's iterations on a
// sample, then every item to its nearest centroid) and returns the index.
// It is deterministic for a seed.
func BuildIVF(m *mf.Model, o IVFOptions) (*Index, error) {
	n, f := m.NumItems(), m.Factors()
	cells := o.Cells
	if cells <= 0 {
		cells = int(math.Round(math.Sqrt(float64(n))))
	}
	cells = max(1, min(cells, n))
	iters := o.Iterations
	if iters <= 0 {
		iters = 6
	}
	sample := o.Sample
	if sample <= 0 {
		sample = 64 * cells
	}
	sample = max(cells, min(sample, n))
	rng := rand.New(rand.NewPCG(o.Seed, 0x1f2e3d4c))
	perm := rng.Perm(n)[:sample]
	sampleRows := make([]int32, sample)
	for i, p := range perm {
		sampleRows[i] = int32(p)
	}
	// k-means runs on the vectors augmented with √(M² − ‖y‖²), M the
	// largest norm (Bachrach et al. 2014): all of them have norm M, so the
	// nearest centroid in L2 is the one of the largest inner product, and
	// cells group the items a query's inner product ranks together.
	var maxNorm float64
	for r := range n {
		maxNorm = max(maxNorm, float64(m.Norm(int32(r))))
	}
	aug := func(r int32, dst []float32) {
		copy(dst, m.Vector(r))
		nr := float64(m.Norm(r))
		dst[f] = float32(math.Sqrt(max(0, maxNorm*maxNorm-nr*nr)))
	}
	fa := f + 1
	centroids := make([]float32, cells*fa)
	for c := range cells {
		aug(sampleRows[c], centroids[c*fa:(c+1)*fa])
	}
	assign := make([]int32, n)
	for range iters {
		if err := nearest(aug, fa, sampleRows, centroids, cells, assign); err != nil {
			return nil, err
		}
		means(aug, fa, sampleRows, assign, centroids, cells)
	}
	all := make([]int32, n)
	for i := range all {
		all[i] = int32(i)
	}
	if err := nearest(aug, fa, all, centroids, cells, assign); err != nil {
		return nil, err
	}
	means(aug, fa, all, assign, centroids, cells)
	// The search uses the centroids without the added coordinate (a
	// query's is 0).
	for c := range cells {
		copy(centroids[c*f:(c+1)*f], centroids[c*fa:c*fa+f])
	}
	centroids = centroids[:cells*f]
	starts := make([]int32, cells+1)
	for _, c := range assign {
		starts[c+1]++
	}
	for c := range cells {
		starts[c+1] += starts[c]
	}
	rows := make([]int32, n)
	next := append([]int32(nil), starts[:cells]...)
	for r, c := range assign { // rows in model order within each cell
		rows[next[c]] = int32(r)
		next[c]++
	}
	if extra := m.NumItems() - n; extra > 0 {
		// Items the server added after training (mf.Model.WithExtraItems)
		// form one more cell, at their mean, searched like the others.
		mean := make([]float64, f)
		for r := n; r < m.NumItems(); r++ {
			rows = append(rows, int32(r))
			for d, v := range m.Vector(int32(r)) {
				mean[d] += float64(v)
			}
		}
		starts = append(starts, int32(m.NumItems()))
		for _, v := range mean {
			centroids = append(centroids, float32(v/float64(extra)))
		}
	}
	return build(m, rows, starts, centroids), nil
}

// nearest writes the nearest centroid (L2) of each listed row's vector
// (vec, fa values) into assign[row]: the highest y·c − ‖c‖²/2, the
// centroids scored as the items of a model so the block kernel
// (mf.Model.ScoresBlock) computes the dots.
func nearest(vec func(int32, []float32), fa int, rows []int32, centroids []float32, cells int, assign []int32) error {
	ids := make([]string, cells)
	for c := range ids {
		ids[c] = strconv.Itoa(c)
	}
	cm, err := mf.New(mf.Info{Hyper: mf.Hyperparameters{Factors: fa, Regularization: 1}}, ids, centroids)
	if err != nil {
		return fmt.Errorf("itemindex: centroids: %w", err)
	}
	half := make([]float32, cells)
	for c := range cells {
		nc := cm.Norm(int32(c))
		half[c] = nc * nc / 2
	}
	const block = 64
	xs := make([]float32, block*fa)
	out := make([]float32, block*cells)
	for b0 := 0; b0 < len(rows); b0 += block {
		b1 := min(b0+block, len(rows))
		for i, r := range rows[b0:b1] {
			vec(r, xs[i*fa:(i+1)*fa])
		}
		k := b1 - b0
		cm.ScoresBlock(xs[:k*fa], k, out[:k*cells])
		for i, r := range rows[b0:b1] {
			best, bestS := int32(0), float32(math.Inf(-1))
			for c, s := range out[i*cells : (i+1)*cells] {
				if v := s - half[c]; v > bestS {
					best, bestS = int32(c), v
				}
			}
			assign[r] = best
		}
	}
	return nil
}

// means moves each centroid to the mean of its listed rows' vectors; a
// cell without rows keeps its centroid.
func means(vec func(int32, []float32), fa int, rows []int32, assign []int32, centroids []float32, cells int) {
	sum := make([]float64, cells*fa)
	count := make([]int, cells)
	v := make([]float32, fa)
	for _, r := range rows {
		c := int(assign[r])
		count[c]++
		vec(r, v)
		for j, x := range v {
			sum[c*fa+j] += float64(x)
		}
	}
	for c := range cells {
		if count[c] == 0 {
			continue
		}
		for j := range fa {
			centroids[c*fa+j] = float32(sum[c*fa+j] / float64(count[c]))
		}
	}
}

// Section encodes the index's cells as the model-artifact section "ivf";
// false for a flat index.
func (ix *Index) Section() (mf.Section, bool) {
	if ix.rows == nil {
		return mf.Section{}, false
	}
	cells, n, f := ix.Cells(), len(ix.rows), ix.f
	b := make([]byte, 0, 12+4*(cells+1)+4*n+4*cells*f)
	b = binary.LittleEndian.AppendUint32(b, uint32(cells))
	b = binary.LittleEndian.AppendUint32(b, uint32(f))
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	for _, s := range ix.starts {
		b = binary.LittleEndian.AppendUint32(b, uint32(s))
	}
	for _, r := range ix.rows {
		b = binary.LittleEndian.AppendUint32(b, uint32(r))
	}
	for _, v := range ix.centroids {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return mf.Section{Kind: SectionKind, Version: SectionVersion, Data: b}, true
}

// FromSection rebuilds the index of m from its "ivf" section (the codes are
// quantized again). A section of another version or that does not fit m is
// an error wrapping ErrSection.
func FromSection(m *mf.Model, sec mf.Section) (*Index, error) {
	if sec.Version != SectionVersion {
		return nil, fmt.Errorf("%w: version %d, this server reads %d", ErrSection, sec.Version, SectionVersion)
	}
	b := sec.Data
	if len(b) < 12 {
		return nil, fmt.Errorf("%w: %d bytes", ErrSection, len(b))
	}
	cells, f, n := int(binary.LittleEndian.Uint32(b)), int(binary.LittleEndian.Uint32(b[4:])), int(binary.LittleEndian.Uint32(b[8:]))
	if n != m.BaseItems() || f != m.Factors() || cells < 1 || cells > n {
		return nil, fmt.Errorf("%w: %d cells of %d items × %d factors for a model of %d × %d", ErrSection, cells, n, f, m.NumItems(), m.Factors())
	}
	if want := 12 + 4*(cells+1) + 4*n + 4*cells*f; len(b) != want {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrSection, len(b), want)
	}
	b = b[12:]
	u32 := func() uint32 { v := binary.LittleEndian.Uint32(b); b = b[4:]; return v }
	starts := make([]int32, cells+1)
	for c := range starts {
		starts[c] = int32(u32())
		if (c == 0 && starts[c] != 0) || (c > 0 && (starts[c] < starts[c-1] || int(starts[c]) > n)) {
			return nil, fmt.Errorf("%w: cell %d starts at %d", ErrSection, c, starts[c])
		}
	}
	if int(starts[cells]) != n {
		return nil, fmt.Errorf("%w: cells end at %d of %d items", ErrSection, starts[cells], n)
	}
	rows := make([]int32, n)
	seen := make([]bool, n)
	for p := range rows {
		r := u32()
		if int(r) >= n || seen[r] {
			return nil, fmt.Errorf("%w: position %d holds row %d (out of range or repeated)", ErrSection, p, r)
		}
		seen[r] = true
		rows[p] = int32(r)
	}
	centroids := make([]float32, cells*f)
	for i := range centroids {
		v := math.Float32frombits(u32())
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("%w: centroid value %v", ErrSection, v)
		}
		centroids[i] = v
	}
	if extra := m.NumItems() - n; extra > 0 {
		// Items the server added after training (mf.Model.WithExtraItems)
		// form one more cell, at their mean, searched like the others.
		mean := make([]float64, f)
		for r := n; r < m.NumItems(); r++ {
			rows = append(rows, int32(r))
			for d, v := range m.Vector(int32(r)) {
				mean[d] += float64(v)
			}
		}
		starts = append(starts, int32(m.NumItems()))
		for _, v := range mean {
			centroids = append(centroids, float32(v/float64(extra)))
		}
	}
	return build(m, rows, starts, centroids), nil
}

// ForModel returns the IVF index of m: from its "ivf" section when it has a
// valid one, else built (BuildIVF with defaults) — an artifact from before
// the section, or one whose section this server cannot read.
func ForModel(m *mf.Model) (*Index, error) {
	if sec, ok := m.Section(SectionKind); ok {
		if ix, err := FromSection(m, sec); err == nil {
			return ix, nil
		}
	}
	return BuildIVF(m, IVFOptions{})
}
