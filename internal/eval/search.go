package eval

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/recsys-dev/recsys/internal/als"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/traindata"
)

// TrainALS trains ALS on the split's matrix and returns the serving model
// and the training result.
func TrainALS(ctx context.Context, s *traindata.Split, h mf.Hyperparameters, workers int) (*mf.Model, *als.Result, error) {
	res, err := als.Train(ctx, s.Matrix, als.Config{Hyperparameters: h, Workers: workers})
	if err != nil {
		return nil, nil, err
	}
	model, err := res.Model(mf.Info{Version: "eval", Data: s.Name})
	if err != nil {
		return nil, nil, err
	}
	return model, res, nil
}

// Compare trains ALS with h on s and evaluates it (folding in every test
// user, as the server does) next to popularity and item-kNN on the same
// split.
func Compare(ctx context.Context, s *traindata.Split, h mf.Hyperparameters, knn KNNOptions, opt Options) (*Report, error) {
	model, _, err := TrainALS(ctx, s, h, opt.Workers)
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	if knn.Workers == 0 {
		knn.Workers = opt.Workers
	}
	k, err := NewItemKNN(ctx, s.Matrix, knn)
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	rep, err := Run(ctx, s, []Recommender{NewALS(model, nil), NewPopularity(s.Matrix), k}, opt)
	if err != nil || !opt.Served {
		return rep, err
	}
	row, err := ServedRow(ctx, s, model, 0, opt)
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	rep.Models = slices.Insert(rep.Models, 1, row) // beside the exact scan's
	return rep, nil
}

// SearchSpace lists the values tried per hyperparameter; an empty list
// keeps the value of SearchOptions.Base.
type SearchSpace struct {
	Factors        []int
	Regularization []float64
	RegExponent    []float64
	Alpha          []float64
	Iterations     []int
}

// SearchOptions configure Search.
type SearchOptions struct {
	Base  mf.Hyperparameters // solver, seed, CG steps and unsearched values
	Space SearchSpace
	// Trials > 0 evaluates that many distinct grid points drawn with Seed;
	// 0 evaluates the whole grid.
	Trials int
	Seed   uint64
	// Metric ranks the trials (default "ndcg@10"); its cut-off is added to
	// Eval.Ks if missing.
	Metric string
	Eval   Options
	// Progress, if set, is called after each trial.
	Progress func(Trial)
}

// Trial is one evaluated setting.
type Trial struct {
	Hyper    mf.Hyperparameters
	Metrics  map[string]float64
	Score    float64 // Metrics[SearchOptions.Metric]
	Duration time.Duration
	// N is the trial's place in the search (1-based) and Of the number of
	// trials the search runs, so progress can say how far it is.
	N, Of int
}

// Search trains and evaluates ALS for each chosen grid point on a
// validation split (carve it from the training data, e.g. traindata.SplitByTime of
// the training split's Train, never from the test cases) and returns the
// trials best first (ties keep grid order).
//
// Training users (cases with User >= 0) are scored with the exact
// least-squares user vectors of als.SolveExact: the vectors mf.Model.FoldIn
// computes (TestALSFoldInMatchesExactUserFactors), solved with blocked
// LAPACK kernels, which at 256 factors is several times faster than one
// fold-in per case. Held-out users are folded in.
func Search(ctx context.Context, validation *traindata.Split, opt SearchOptions) ([]Trial, error) {
	if opt.Metric == "" {
		opt.Metric = Key(MetricNDCG, 10)
	}
	_, k, err := ParseKey(opt.Metric)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	if !slices.Contains(opt.Eval.Ks, k) {
		opt.Eval.Ks = append(slices.Clone(opt.Eval.Ks), k)
	}
	grid := opt.grid()
	if opt.Trials > 0 && opt.Trials < len(grid) {
		rng := rand.New(rand.NewPCG(opt.Seed, 0x5ea7c4))
		picked := rng.Perm(len(grid))[:opt.Trials]
		slices.Sort(picked)
		sub := make([]mf.Hyperparameters, len(picked))
		for j, p := range picked {
			sub[j] = grid[p]
		}
		grid = sub
	}
	trials := make([]Trial, 0, len(grid))
	for i, h := range grid {
		start := time.Now()
		model, res, err := TrainALS(ctx, validation, h, opt.Eval.Workers)
		if err != nil {
			return nil, fmt.Errorf("search: %+v: %w", h, err)
		}
		users, err := als.SolveExact(ctx, validation.Matrix, res.ItemFactors, res.Hyper, opt.Eval.Workers)
		if err != nil {
			return nil, fmt.Errorf("search: %+v: %w", h, err)
		}
		r, err := Evaluate(ctx, validation, NewALS(model, users), opt.Eval)
		if err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		t := Trial{Hyper: model.Info().Hyper, Metrics: r.Metrics, Score: r.Metrics[opt.Metric], Duration: time.Since(start),
			N: i + 1, Of: len(grid)}
		trials = append(trials, t)
		if opt.Progress != nil {
			opt.Progress(t)
		}
	}
	slices.SortStableFunc(trials, func(a, b Trial) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return 0
	})
	return trials, nil
}

// grid lists every combination of the search space, in a fixed order.
func (o SearchOptions) grid() []mf.Hyperparameters {
	orBase := func(v []float64, base float64) []float64 {
		if len(v) == 0 {
			return []float64{base}
		}
		return v
	}
	orBaseInt := func(v []int, base int) []int {
		if len(v) == 0 {
			return []int{base}
		}
		return v
	}
	var out []mf.Hyperparameters
	for _, f := range orBaseInt(o.Space.Factors, o.Base.Factors) {
		for _, reg := range orBase(o.Space.Regularization, o.Base.Regularization) {
			for _, nu := range orBase(o.Space.RegExponent, o.Base.RegExponent) {
				for _, a := range orBase(o.Space.Alpha, o.Base.Alpha) {
					for _, it := range orBaseInt(o.Space.Iterations, o.Base.Iterations) {
						h := o.Base
						h.Factors, h.Regularization, h.RegExponent, h.Alpha, h.Iterations = f, reg, nu, a, it
						out = append(out, h)
					}
				}
			}
		}
	}
	return out
}
