package content

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/recsys-dev/recsys/internal/mf"
)

// Options tune Fit; zero fields get defaults.
type Options struct {
	// Lambda is the ridge penalty λ. Default 1: a feature seen on one item
	// moves half-way to that item's offset from the mean.
	Lambda float64
	// MinItems is how many training items a feature needs to be kept.
	// Default 2: a feature of one item cannot generalise.
	MinItems int
	// Iterations bounds the conjugate-gradient steps. Default 60.
	Iterations int
}

func (o *Options) defaults() error {
	if o.Lambda == 0 {
		o.Lambda = 1
	}
	if o.MinItems == 0 {
		o.MinItems = 2
	}
	if o.Iterations == 0 {
		o.Iterations = 60
	}
	if !(o.Lambda > 0) || math.IsInf(o.Lambda, 0) || o.MinItems < 1 || o.Iterations < 1 {
		return fmt.Errorf("content options: lambda %v, min items %d, iterations %d", o.Lambda, o.MinItems, o.Iterations)
	}
	return nil
}

// ErrNoExamples means no item of the model has a catalog entry with a
// feature: there is nothing to learn from.
var ErrNoExamples = errors.New("no model item has attributes")

// Fit learns the map from the attributes of the model's items (lookup
// gives an item's catalog entry; items it does not know are left out) to
// their factors.
func Fit(ctx context.Context, model *mf.Model, lookup func(id string) (Item, bool), o Options) (*Map, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	f := model.Factors()
	// The examples and their features.
	type example struct {
		row   int32
		feats []Feature
	}
	var ex []example
	count := map[string]int{}
	for r := range int32(model.NumItems()) {
		it, ok := lookup(model.ItemID(r))
		if !ok {
			continue
		}
		fs := Features(it)
		if len(fs) == 0 {
			continue
		}
		ex = append(ex, example{row: r, feats: fs})
		for _, ft := range fs {
			count[ft.Name]++
		}
	}
	if len(ex) == 0 {
		return nil, ErrNoExamples
	}
	var names []string
	for n, c := range count {
		if c >= o.MinItems {
			names = append(names, n)
		}
	}
	if len(names) > MaxFeatures { // the most common ones
		slices.SortFunc(names, func(a, b string) int {
			return cmp.Or(cmp.Compare(count[b], count[a]), cmp.Compare(a, b))
		})
		names = names[:MaxFeatures]
	}
	slices.Sort(names)
	index := make(map[string]int32, len(names))
	for i, n := range names {
		index[n] = int32(i)
	}
	// X as CSR rows over the kept features; Y centred.
	ptr := make([]int, 1, len(ex)+1)
	var col []int32
	var val []float32
	mean := make([]float64, f)
	for _, e := range ex {
		for d, v := range model.Vector(e.row) {
			mean[d] += float64(v)
		}
	}
	for d := range mean {
		mean[d] /= float64(len(ex))
	}
	for _, e := range ex {
		for _, ft := range e.feats {
			if i, ok := index[ft.Name]; ok {
				col = append(col, i)
				val = append(val, ft.Weight)
			}
		}
		ptr = append(ptr, len(col))
	}
	v := len(names)
	// b = Xᵀ(Y − μ)
	rhs := make([]float64, v*f)
	for k, e := range ex {
		y := model.Vector(e.row)
		for p := ptr[k]; p < ptr[k+1]; p++ {
			c, xv := int(col[p]), float64(val[p])
			out := rhs[c*f : (c+1)*f]
			for d := range f {
				out[d] += xv * (float64(y[d]) - mean[d])
			}
		}
	}
	// A(w) = XᵀX·w + λw, applied through X (never formed).
	tmp := make([]float64, f)
	apply := func(w, out []float64) {
		for i := range out {
			out[i] = o.Lambda * w[i]
		}
		for k := range ex {
			clear(tmp)
			for p := ptr[k]; p < ptr[k+1]; p++ {
				c, xv := int(col[p]), float64(val[p])
				for d, wv := range w[c*f : (c+1)*f] {
					tmp[d] += xv * wv
				}
			}
			for p := ptr[k]; p < ptr[k+1]; p++ {
				c, xv := int(col[p]), float64(val[p])
				dst := out[c*f : (c+1)*f]
				for d, t := range tmp {
					dst[d] += xv * t
				}
			}
		}
	}
	w, err := conjugateGradient(ctx, apply, rhs, o.Iterations)
	if err != nil {
		return nil, err
	}
	m := &Map{f: f, mean: make([]float32, f), names: names, index: index, weight: make([]float32, len(w))}
	for d, x := range mean {
		m.mean[d] = float32(x)
	}
	for i, x := range w {
		m.weight[i] = float32(x)
	}
	return m, nil
}

// conjugateGradient solves A w = b for a symmetric positive definite A,
// from w = 0, for at most iters steps or until the residual is 1e-6 of b.
func conjugateGradient(ctx context.Context, apply func(w, out []float64), b []float64, iters int) ([]float64, error) {
	n := len(b)
	w, r, p, ap := make([]float64, n), slices.Clone(b), slices.Clone(b), make([]float64, n)
	rr := dot(r, r)
	stop := rr * 1e-12
	for range iters {
		if rr <= stop || rr == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		apply(p, ap)
		alpha := rr / dot(p, ap)
		for i := range w {
			w[i] += alpha * p[i]
			r[i] -= alpha * ap[i]
		}
		next := dot(r, r)
		beta := next / rr
		rr = next
		for i := range p {
			p[i] = r[i] + beta*p[i]
		}
	}
	return w, nil
}

func dot(a, b []float64) float64 {
	var s float64
	for i, v := range a {
		s += v * b[i]
	}
	return s
}
