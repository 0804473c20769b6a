package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/recsys-dev/recsys/internal/blend"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/topk"
	"github.com/recsys-dev/recsys/internal/traindata"
)

var _ Recommender = (*Blend)(nil)

// Sequences returns d's events as per-user item sequences in time order
// (ties in input order), what the blend's lists and recency read.
func Sequences(d *traindata.Data) blend.Sequences {
	return blend.FromEvents(d.Users, d.Row, d.Col, d.Time)
}

// Blend scores with MF plus a blend (package blend), exactly as the server
// scores a live profile: a case's items newest first are its user's
// training events in time order (for a user the model was not trained on,
// User < 0, Known in its given order), folded in with the blend's recency
// weighting, and the MF scores standardized and summed with the neighbour
// and transition terms.
type Blend struct {
	name  string
	model *mf.Model
	b     *blend.Blend
	seqs  blend.Sequences
	pool  sync.Pool // *blendScratch
}

type blendScratch struct {
	ws     mf.Workspace
	bs     blend.Scratch
	recent []int32
	w      []float64
	seen   []bool
}

// NewBlend scores with model and b; seqs are the training sequences of
// the split's users (Sequences(split.Train)).
func NewBlend(name string, model *mf.Model, b *blend.Blend, seqs blend.Sequences) *Blend {
	return &Blend{name: name, model: model, b: b, seqs: seqs}
}

// Name is the name given to NewBlend.
func (r *Blend) Name() string { return r.name }

func (r *Blend) scratch() *blendScratch {
	sc, _ := r.pool.Get().(*blendScratch)
	if sc == nil {
		sc = &blendScratch{seen: make([]bool, r.model.NumItems())}
	}
	return sc
}

// recent fills sc.recent (newest first) and sc.w (their strengths, before
// recency) for a case.
func (r *Blend) recent(sc *blendScratch, cs traindata.Case) error {
	n := r.model.NumItems()
	sc.recent, sc.w = sc.recent[:0], sc.w[:0]
	if cs.User >= 0 && int(cs.User) < r.seqs.Users() {
		sc.recent = blend.Recent(sc.recent, r.seqs.Of(int(cs.User)), sc.seen)
	} else {
		sc.recent = append(sc.recent, cs.Known...)
	}
	for _, i := range sc.recent {
		if int(i) >= n {
			return fmt.Errorf("blend: item %d outside %d items", i, n)
		}
		k, ok := slices.BinarySearch(cs.Known, i)
		if !ok {
			return fmt.Errorf("blend: user %d's item %d is not among the known items", cs.User, i)
		}
		sc.w = append(sc.w, float64(cs.KnownWeights[k]))
	}
	return nil
}

// Scores folds in each case and scores every item with the blend.
func (r *Blend) Scores(cases []traindata.Case, out []float32) error {
	n := r.model.NumItems()
	if len(out) < len(cases)*n {
		return fmt.Errorf("%s: output holds %d scores, need %d", r.name, len(out), len(cases)*n)
	}
	sc := r.scratch()
	defer r.pool.Put(sc)
	for c, cs := range cases {
		row := out[c*n : (c+1)*n]
		if err := r.recent(sc, cs); err != nil {
			return err
		}
		r.b.RecencyWeights(sc.w)
		x, err := r.model.FoldIn(&sc.ws, sc.recent, sc.w)
		if err != nil {
			return fmt.Errorf("%s: fold in a user with %d items: %w", r.name, len(sc.recent), err)
		}
		r.model.Scores(x, row)
		r.b.Prepare(&sc.bs, x, sc.recent)
		r.b.Finish(&sc.bs, row)
		sc.bs.Release()
	}
	return nil
}

// BlendOptions configure FitBlend.
type BlendOptions struct {
	Build blend.BuildOptions
	// Users caps the validation users the grid is evaluated on (a seeded
	// sample; default 10000: with fewer, the noise of the choice is as
	// large as the differences between neighbouring weights).
	Users int
	// K is the cut-off of the NDCG the weights maximize (default 20).
	K int
	// Base holds the depths and decays the grid keeps fixed (zero:
	// blend.DefaultParams).
	Base    blend.Params
	Seed    uint64
	Workers int
}

// BlendTrial is one validation grid point and its metrics.
type BlendTrial struct {
	Params blend.Params `json:"params"`
	NDCG   float64      `json:"ndcg"`
	HR     float64      `json:"hr"`
}

// BlendSearch is the validation grid of FitBlend.
type BlendSearch struct {
	K      int          `json:"k"`
	Users  int          `json:"users"`
	Trials []BlendTrial `json:"trials"`
}

// Best returns the best trial by NDCG@K that uses only the allowed terms
// (a term not allowed has weight 0); ties go to the earlier (simpler) trial.
func (s *BlendSearch) Best(neighbors, transitions, recency bool) BlendTrial {
	best := -1
	for k, t := range s.Trials {
		p := t.Params
		if (!neighbors && p.Neighbor != 0) || (!transitions && p.Transition != 0) || (!recency && p.Recency != 0) {
			continue
		}
		if best < 0 || t.NDCG > s.Trials[best].NDCG {
			best = k
		}
	}
	if best < 0 {
		return BlendTrial{Params: blend.DefaultParams()}
	}
	return s.Trials[best]
}

// PoolBlendSearches pools weight grids measured on different validation
// users — folds of the same data, e.g. each user's last and second-to-last
// training event — into one: each point's NDCG and HR are the mean over all
// the folds' users (each fold weighted by its users), so the best point is
// chosen on more users and on more than one position of the sequence. The
// grids must have the same cut-off and the same points in the same order
// (grids of the same BlendOptions do).
func PoolBlendSearches(grids ...*BlendSearch) (*BlendSearch, error) {
	if len(grids) == 0 || grids[0] == nil {
		return nil, errors.New("pool blend grids: no grid")
	}
	first := grids[0]
	out := &BlendSearch{K: first.K, Trials: make([]BlendTrial, len(first.Trials))}
	for i, t := range first.Trials {
		out.Trials[i].Params = t.Params
	}
	for g, s := range grids {
		switch {
		case s == nil:
			return nil, fmt.Errorf("pool blend grids: grid %d is nil", g)
		case s.K != first.K:
			return nil, fmt.Errorf("pool blend grids: grid %d is at K %d, grid 0 at %d", g, s.K, first.K)
		case len(s.Trials) != len(first.Trials):
			return nil, fmt.Errorf("pool blend grids: grid %d has %d points, grid 0 %d", g, len(s.Trials), len(first.Trials))
		}
		for i, t := range s.Trials {
			if t.Params != first.Trials[i].Params {
				return nil, fmt.Errorf("pool blend grids: point %d of grid %d is %+v, of grid 0 %+v", i, g, t.Params, first.Trials[i].Params)
			}
			out.Trials[i].NDCG += t.NDCG * float64(s.Users)
			out.Trials[i].HR += t.HR * float64(s.Users)
		}
		out.Users += s.Users
	}
	if out.Users == 0 {
		return nil, errors.New("pool blend grids: no validation users")
	}
	for i := range out.Trials {
		out.Trials[i].NDCG /= float64(out.Users)
		out.Trials[i].HR /= float64(out.Users)
	}
	return out, nil
}

// The grid FitBlend searches.
var (
	blendNeighbor   = []float32{0, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8}
	blendTransition = []float32{0, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16}
	blendRecency    = []float32{0, 1, 4}
)

// FitBlend chooses blend weights on a validation split carved from s's
// training events (each user's last training event held out, as
// traindata.LeaveLastOut does; s's test cases are never read): it trains MF with h on
// the rest, builds the lists from the rest, and evaluates every point of a
// weight grid on up to opt.Users validation users with one fold-in per user
// and recency value.
func FitBlend(ctx context.Context, s *traindata.Split, h mf.Hyperparameters, opt BlendOptions) (*BlendSearch, error) {
	v, err := traindata.LeaveLastOut(s.Train)
	if err != nil {
		return nil, fmt.Errorf("blend validation split: %w", err)
	}
	bv, err := NewBlendValidator(ctx, v, opt)
	if err != nil {
		return nil, err
	}
	model, _, err := TrainALS(ctx, v, h, bv.opt.Workers)
	if err != nil {
		return nil, fmt.Errorf("blend validation model: %w", err)
	}
	return bv.Search(ctx, model)
}

// BlendValidator evaluates the blend's weight grid on a validation split
// for any MF model trained on that split's training part: the lists are
// built once, so a hyperparameter search can score each of its settings by
// the blend it would serve (package tune), not by MF alone.
type BlendValidator struct {
	v      *traindata.Split
	seqs   blend.Sequences
	nb, tr *blend.Lists
	cases  []traindata.Case
	opt    BlendOptions
}

// NewBlendValidator builds the lists from v's training events and samples
// up to opt.Users of v's cases. Only v.Train and v.Cases are read.
func NewBlendValidator(ctx context.Context, v *traindata.Split, opt BlendOptions) (*BlendValidator, error) {
	if opt.Users <= 0 {
		opt.Users = 10000
	}
	if opt.K <= 0 {
		opt.K = 20
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.GOMAXPROCS(0)
	}
	opt.Build.Workers = opt.Workers
	if opt.Base == (blend.Params{}) {
		opt.Base = blend.DefaultParams()
	}
	bv := &BlendValidator{v: v, seqs: Sequences(v.Train), opt: opt}
	items := v.Train.Items
	var err error
	if bv.nb, err = blend.Neighbors(ctx, bv.seqs, items, opt.Build); err != nil {
		return nil, err
	}
	if bv.tr, err = blend.Transitions(ctx, bv.seqs, items, opt.Build); err != nil {
		return nil, err
	}
	bv.cases = v.Cases
	if len(bv.cases) > opt.Users {
		bv.cases = slices.Clone(bv.cases)
		rng := rand.New(rand.NewPCG(opt.Seed, 0xb1e))
		rng.Shuffle(len(bv.cases), func(i, j int) { bv.cases[i], bv.cases[j] = bv.cases[j], bv.cases[i] })
		bv.cases = bv.cases[:opt.Users]
	}
	return bv, nil
}

// Cases is the number of validation users a search scores.
func (bv *BlendValidator) Cases() int { return len(bv.cases) }

// Search evaluates the weight grid with model, which must be trained on
// the validation split's training part (its items are the split's).
func (bv *BlendValidator) Search(ctx context.Context, model *mf.Model) (*BlendSearch, error) {
	if model.NumItems() != bv.v.Train.Items {
		return nil, fmt.Errorf("blend validation: model has %d items, the split %d", model.NumItems(), bv.v.Train.Items)
	}
	return searchBlend(ctx, bv.seqs, bv.nb, bv.tr, bv.cases, model, bv.opt)
}

// searchBlend evaluates the weight grid on cases of a validation split
// whose training sequences are seqs, with model trained on them.
func searchBlend(ctx context.Context, seqs blend.Sequences, nb, tr *blend.Lists, cases []traindata.Case, model *mf.Model, opt BlendOptions) (*BlendSearch, error) {
	items := model.NumItems()
	var err error
	var grid []blend.Weights
	for _, wn := range blendNeighbor {
		for _, wt := range blendTransition {
			grid = append(grid, blend.Weights{Neighbor: wn, Transition: wt})
		}
	}
	// One probe blend per recency value accumulates both terms.
	probes := make([]*blend.Blend, len(blendRecency))
	for k, beta := range blendRecency {
		p := opt.Base
		p.Neighbor, p.Transition, p.Recency = 1, 1, beta
		if probes[k], err = blend.New(model, nb, tr, p); err != nil {
			return nil, err
		}
	}
	// Per-case gains, summed in case order at the end so the result does
	// not depend on scheduling.
	width := len(blendRecency) * len(grid)
	ndcg := make([]float64, len(cases)*width)
	hr := make([]float64, len(cases)*width)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, opt.Workers)
	for w := range opt.Workers {
		wg.Go(func() {
			r := NewBlend("probe", model, probes[0], seqs)
			sc := r.scratch()
			scores := make([]float32, items)
			sorted := make([]float32, 0, items)
			heap := topk.New(1)
			var top []topk.Entry
			ranks := make([]int, len(grid))
			for ctx.Err() == nil {
				c := int(next.Add(1) - 1)
				if c >= len(cases) {
					break
				}
				cs := cases[c]
				if err := r.recent(sc, cs); err != nil {
					errs[w] = err
					return
				}
				base := slices.Clone(sc.w)
				for k, pb := range probes {
					copy(sc.w, base)
					pb.RecencyWeights(sc.w)
					x, err := model.FoldIn(&sc.ws, sc.recent, sc.w)
					if err != nil {
						errs[w] = err
						return
					}
					model.Scores(x, scores)
					pb.Prepare(&sc.bs, x, sc.recent)
					// Only ranks below K count: the top MF scores do.
					m := opt.K + len(sc.bs.Touched()) + len(cs.Known) + 1
					sorted, top = blend.TopScores(sorted[:0], scores, m, heap, top)
					for _, t := range cs.Test {
						if _, bought := slices.BinarySearch(cs.Known, t); bought {
							continue // a miss, as in Evaluate
						}
						pb.Ranks(&sc.bs, scores, sorted, cs.Known, t, grid, ranks)
						for g, rank := range ranks {
							if rank < opt.K {
								at := c*width + k*len(grid) + g
								ndcg[at] += 1 / math.Log2(float64(rank)+2) / float64(len(cs.Test))
								hr[at] += 1 / float64(len(cs.Test))
							}
						}
					}
					sc.bs.Release()
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("blend validation: %w", err)
		}
	}
	res := &BlendSearch{K: opt.K, Users: len(cases)}
	for k, beta := range blendRecency {
		for g, w := range grid {
			p := opt.Base
			p.Neighbor, p.Transition, p.Recency = w.Neighbor, w.Transition, beta
			t := BlendTrial{Params: p}
			for c := range cases {
				t.NDCG += ndcg[c*width+k*len(grid)+g]
				t.HR += hr[c*width+k*len(grid)+g]
			}
			t.NDCG /= float64(len(cases))
			t.HR /= float64(len(cases))
			res.Trials = append(res.Trials, t)
		}
	}
	return res, nil
}

// BuildBlend builds the lists from s's training events and returns the
// blend with weights p over model (trained on s.Matrix). Lists a zero
// weight does not use are left out.
func BuildBlend(ctx context.Context, s *traindata.Split, model *mf.Model, p blend.Params, opt blend.BuildOptions) (*blend.Blend, error) {
	return BuildBlendFrom(ctx, s.Train, model, p, opt)
}

// BuildBlendFrom is BuildBlend over all of d's events, for a model whose
// rows are d's items (one trained on d.Matrix()).
func BuildBlendFrom(ctx context.Context, d *traindata.Data, model *mf.Model, p blend.Params, opt blend.BuildOptions) (*blend.Blend, error) {
	seqs := Sequences(d)
	var nb, tr *blend.Lists
	var err error
	if p.Neighbor != 0 {
		if nb, err = blend.Neighbors(ctx, seqs, d.Items, opt); err != nil {
			return nil, err
		}
	}
	if p.Transition != 0 {
		if tr, err = blend.Transitions(ctx, seqs, d.Items, opt); err != nil {
			return nil, err
		}
	}
	return blend.New(model, nb, tr, p)
}

// BlendAblation trains MF with h on s, fits the blend weights on a
// validation split of s's training events (FitBlend) and evaluates
// AblationRows on s's test cases. The search is returned for the report.
func BlendAblation(ctx context.Context, s *traindata.Split, h mf.Hyperparameters, opt BlendOptions, eopt Options) ([]ModelResult, *BlendSearch, error) {
	search, err := FitBlend(ctx, s, h, opt)
	if err != nil {
		return nil, nil, err
	}
	model, _, err := TrainALS(ctx, s, h, opt.Workers)
	if err != nil {
		return nil, nil, err
	}
	rows, err := AblationRows(ctx, s, model, search, opt, eopt)
	if err != nil {
		return nil, nil, err
	}
	return rows, search, nil
}

// AblationRows evaluates, on s's test cases with model (MF trained on
// s.Matrix), the pure item-neighbour model "itemneighbors"
// (blend.NeighborsOnly) and the blend's ablation rows: "mf" (MF alone,
// standardized), "mf+neighbors", "mf+neighbors+transitions" and
// "mf+neighbors+transitions+recency", each with the weights of search's
// best point among those that use only its terms; with eopt.Served, then
// the "served blend" row (ServedBlendRow) of the last, with its recall
// against it. Given the grid the retraining job chose its weights from,
// the last row is the blend it serves.
func AblationRows(ctx context.Context, s *traindata.Split, model *mf.Model, search *BlendSearch, opt BlendOptions, eopt Options) ([]ModelResult, error) {
	rows := []namedParams{
		{"itemneighbors", blend.NeighborsOnly()},
		{"mf", search.Best(false, false, false).Params},
		{"mf+neighbors", search.Best(true, false, false).Params},
		{"mf+neighbors+transitions", search.Best(true, true, false).Params},
		{"mf+neighbors+transitions+recency", search.Best(true, true, true).Params},
	}
	out, last, err := blendRows(ctx, s, model, rows, opt, eopt)
	if err != nil {
		return nil, err
	}
	if eopt.Served {
		res, err := ServedBlendRow(ctx, s, last, 0, eopt)
		if err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	return out, nil
}

// WeightRows evaluates on s's test cases the full blend over model with
// the best weights of each grid (a row per grid, named names[i]): what the
// choice of the validation split alone does to the blend.
func WeightRows(ctx context.Context, s *traindata.Split, model *mf.Model, names []string, grids []*BlendSearch, opt BlendOptions, eopt Options) ([]ModelResult, error) {
	if len(names) != len(grids) {
		return nil, fmt.Errorf("weight rows: %d names for %d grids", len(names), len(grids))
	}
	rows := make([]namedParams, len(grids))
	for i, g := range grids {
		rows[i] = namedParams{names[i], g.Best(true, true, true).Params}
	}
	out, _, err := blendRows(ctx, s, model, rows, opt, eopt)
	return out, err
}

type namedParams struct {
	name string
	p    blend.Params
}

// blendRows evaluates the blend over model with each row's weights on s's
// test cases (the lists built once from s's training events); last is the
// last row's recommender.
func blendRows(ctx context.Context, s *traindata.Split, model *mf.Model, rows []namedParams, opt BlendOptions, eopt Options) (out []ModelResult, last *Blend, err error) {
	bopt := opt.Build
	bopt.Workers = opt.Workers
	seqs := Sequences(s.Train)
	nb, err := blend.Neighbors(ctx, seqs, s.Matrix.Cols, bopt)
	if err != nil {
		return nil, nil, err
	}
	tr, err := blend.Transitions(ctx, seqs, s.Matrix.Cols, bopt)
	if err != nil {
		return nil, nil, err
	}
	for _, row := range rows {
		b, err := blend.New(model, nb, tr, row.p)
		if err != nil {
			return nil, nil, err
		}
		last = NewBlend(row.name, model, b, seqs)
		res, err := Evaluate(ctx, s, last, eopt)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, res)
	}
	return out, last, nil
}
