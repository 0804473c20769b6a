package eval

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/sparse"
	"github.com/recsys-dev/recsys/internal/topk"
	"github.com/recsys-dev/recsys/internal/traindata"
)

var (
	_ Recommender = (*Popularity)(nil)
	_ Recommender = (*ItemKNN)(nil)
	_ Recommender = (*ALS)(nil)
)

// Popularity recommends the items with the most training users to everyone.
type Popularity struct {
	counts []float32
}

// NewPopularity counts the users of every item (column) of m.
func NewPopularity(m *sparse.Matrix) *Popularity {
	p := &Popularity{counts: make([]float32, m.Cols)}
	for _, i := range m.Indices {
		p.counts[i]++
	}
	return p
}

// Name is "popularity".
func (p *Popularity) Name() string { return "popularity" }

// Scores gives every case the item counts.
func (p *Popularity) Scores(cases []traindata.Case, out []float32) error {
	n := len(p.counts)
	if len(out) < len(cases)*n {
		return fmt.Errorf("popularity: output holds %d scores, need %d", len(out), len(cases)*n)
	}
	for c := range cases {
		copy(out[c*n:(c+1)*n], p.counts)
	}
	return nil
}

// KNNOptions configure ItemKNN.
type KNNOptions struct {
	// Neighbors is the number of most similar items kept per item
	// (default 100).
	Neighbors int
	// Workers compute similarities in parallel (default GOMAXPROCS).
	Workers int
}

// ItemKNN is item-based collaborative filtering: the similarity of two
// items is the cosine of their columns in the training matrix, each item
// keeps its Neighbors most similar items, and a user's score for item j is
// Σ_{i known} w_i · sim(i, j) over the known items i that have j as a
// neighbour (w_i the user's strength for i).
type ItemKNN struct {
	items  int
	indptr []int64 // neighbours of item i: nbr[indptr[i]:indptr[i+1]]
	nbr    []int32
	sim    []float32
}

// NewItemKNN computes the neighbour lists from m (users × items). The work
// is Σ_u n_u² multiply-adds (n_u: items of user u), done item by item with a
// dense accumulator per worker, so memory stays O(items·Neighbors).
func NewItemKNN(ctx context.Context, m *sparse.Matrix, opt KNNOptions) (*ItemKNN, error) {
	if opt.Neighbors == 0 {
		opt.Neighbors = 100
	}
	if opt.Neighbors < 1 {
		return nil, fmt.Errorf("item-kNN: neighbours must be >= 1, got %d", opt.Neighbors)
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	mt := m.Transpose() // item → users
	norms := make([]float64, m.Cols)
	for i := range norms {
		_, vals := mt.Row(i)
		var s float64
		for _, v := range vals {
			s += float64(v) * float64(v)
		}
		norms[i] = math.Sqrt(s)
	}
	k := min(opt.Neighbors, max(m.Cols-1, 0))
	l, err := topk.PerRow(ctx, m.Cols, k, opt.Workers, func() func(int32, *topk.Heap) {
		acc := make([]float64, m.Cols)
		var touched []int32
		return func(i int32, heap *topk.Heap) {
			users, uv := mt.Row(int(i))
			for a, u := range users {
				cols, vals := m.Row(int(u))
				wu := float64(uv[a])
				for b, j := range cols {
					if acc[j] == 0 {
						touched = append(touched, j)
					}
					acc[j] += wu * float64(vals[b])
				}
			}
			for _, j := range touched {
				if j != i && acc[j] > 0 {
					heap.Push(j, float32(acc[j]/(norms[i]*norms[j])))
				}
				acc[j] = 0
			}
			touched = touched[:0]
		}
	})
	if err != nil {
		return nil, err
	}
	return &ItemKNN{items: m.Cols, indptr: l.Ptr, nbr: l.Row, sim: l.Score}, nil
}

// Name is "itemknn".
func (k *ItemKNN) Name() string { return "itemknn" }

// Neighbors returns item i's neighbours, most similar first, with their
// similarities; callers must not modify them.
func (k *ItemKNN) Neighbors(i int32) ([]int32, []float32) {
	lo, hi := k.indptr[i], k.indptr[i+1]
	return k.nbr[lo:hi], k.sim[lo:hi]
}

// Scores sums the neighbour similarities of each case's known items.
func (k *ItemKNN) Scores(cases []traindata.Case, out []float32) error {
	n := k.items
	if len(out) < len(cases)*n {
		return fmt.Errorf("item-kNN: output holds %d scores, need %d", len(out), len(cases)*n)
	}
	for c, cs := range cases {
		row := out[c*n : (c+1)*n]
		clear(row)
		for a, i := range cs.Known {
			if int(i) >= n {
				return fmt.Errorf("item-kNN: known item %d outside %d items", i, n)
			}
			w := cs.KnownWeights[a]
			nb, sim := k.Neighbors(i)
			for b, j := range nb {
				row[j] += w * sim[b]
			}
		}
	}
	return nil
}

// ALS scores with a matrix-factorization model. A case's user vector is
// folded in from its known items through mf.Model.FoldIn, exactly as the
// server folds in a live profile, unless UserFactors are given and the case
// is a training user, in which case the trained vector is used.
type ALS struct {
	model       *mf.Model
	userFactors []float32
	pool        sync.Pool // *alsScratch
}

type alsScratch struct {
	ws mf.Workspace
	xs []float32
	w  []float64
}

// NewALS scores with model, whose item rows must be the columns of the
// split's matrix (a model built from als.Result on that matrix).
// userFactors (users × factors, or nil) are used for cases with User >= 0.
func NewALS(model *mf.Model, userFactors []float32) *ALS {
	return &ALS{model: model, userFactors: userFactors}
}

// Name is "als".
func (a *ALS) Name() string { return "als" }

// Scores folds in (or looks up) a vector per case and scores all items with
// one matrix product for the whole block.
func (a *ALS) Scores(cases []traindata.Case, out []float32) error {
	f, n := a.model.Factors(), a.model.NumItems()
	if len(out) < len(cases)*n {
		return fmt.Errorf("als: output holds %d scores, need %d", len(out), len(cases)*n)
	}
	sc, _ := a.pool.Get().(*alsScratch)
	if sc == nil {
		sc = &alsScratch{}
	}
	defer a.pool.Put(sc)
	if cap(sc.xs) < len(cases)*f {
		sc.xs = make([]float32, len(cases)*f)
	}
	xs := sc.xs[:len(cases)*f]
	for c, cs := range cases {
		x := xs[c*f : (c+1)*f]
		if a.userFactors != nil && cs.User >= 0 {
			if int(cs.User+1)*f > len(a.userFactors) {
				return fmt.Errorf("als: user %d has no trained factors", cs.User)
			}
			copy(x, a.userFactors[int(cs.User)*f:int(cs.User+1)*f])
			continue
		}
		sc.w = sc.w[:0]
		for k, i := range cs.Known {
			if int(i) >= n {
				return fmt.Errorf("als: known item %d outside %d items", i, n)
			}
			sc.w = append(sc.w, float64(cs.KnownWeights[k]))
		}
		v, err := a.model.FoldIn(&sc.ws, cs.Known, sc.w)
		if err != nil {
			return fmt.Errorf("als: fold in a user with %d items: %w", len(cs.Known), err)
		}
		copy(x, v)
	}
	a.model.ScoresBlock(xs, len(cases), out)
	return nil
}
