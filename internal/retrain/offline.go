package retrain

import (
	"context"
	"fmt"
	"time"

	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf"
)

// EvalConfig is an offline comparison of ALS with the baselines.
type EvalConfig struct {
	Hyper     mf.Hyperparameters
	Weighting event.Weighting // default event.DefaultWeighting()
	AsOf      time.Time       // default: now
	// Split is "time" (per-user time holdout, Holdout) or "user" (strong
	// generalization, Users). Ignored for a pre-split pair.
	Split   string
	Holdout eval.TimeSplit
	Users   eval.UserSplit
	Ks      []int
	KNN     eval.KNNOptions
	Workers int
}

func (c *EvalConfig) defaults() error {
	if c.Weighting == (event.Weighting{}) {
		c.Weighting = event.DefaultWeighting()
	}
	if c.AsOf.IsZero() {
		c.AsOf = time.Now()
	}
	if c.Holdout == (eval.TimeSplit{}) {
		c.Holdout = eval.TimeSplit{LastN: 1}
	}
	if c.Users == (eval.UserSplit{}) {
		c.Users = eval.UserSplit{Fraction: 0.1, Seed: 1}
	}
	if c.KNN.Workers == 0 {
		c.KNN.Workers = c.Workers
	}
	return c.Hyper.Validate()
}

// collect reads sources into one Data (shared id tables) and returns, for
// each source, the index of its first event.
func collect(ctx context.Context, w event.Weighting, asOf time.Time, srcs ...Source) (*eval.Data, []int, error) {
	col := eval.NewCollector(w, asOf)
	starts := make([]int, len(srcs))
	for i, src := range srcs {
		starts[i] = col.Len()
		if err := src(ctx, col.Add); err != nil {
			return nil, nil, err
		}
	}
	return col.Data(), starts, nil
}

// MakeSplit reads src and splits it as cfg says.
func MakeSplit(ctx context.Context, cfg EvalConfig, src Source) (*eval.Split, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	d, _, err := collect(ctx, cfg.Weighting, cfg.AsOf, src)
	if err != nil {
		return nil, err
	}
	switch cfg.Split {
	case "", "time":
		return eval.SplitByTime(d, cfg.Holdout)
	case "user":
		return eval.SplitByUser(d, cfg.Users)
	}
	return nil, fmt.Errorf("split must be time or user, got %q", cfg.Split)
}

// MakePairSplit reads a pre-split pair: train's events are trained on,
// test's are held out, over shared id tables.
func MakePairSplit(ctx context.Context, cfg EvalConfig, train, test Source) (*eval.Split, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	d, starts, err := collect(ctx, cfg.Weighting, cfg.AsOf, train, test)
	if err != nil {
		return nil, err
	}
	first := starts[1]
	return eval.SplitHeld(d, func(k int) bool { return k >= first }, "given train/test files")
}

// Evaluate trains ALS on the split and reports it next to popularity and
// item-kNN, all on the same cases with full ranking.
func Evaluate(ctx context.Context, cfg EvalConfig, s *eval.Split) (*eval.Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return eval.Compare(ctx, s, cfg.Hyper, cfg.KNN, eval.Options{Ks: cfg.Ks, Workers: cfg.Workers})
}

// Tune searches hyperparameters on a validation split carved from s's
// training events (the same kind of time holdout), never from s's test
// cases, and returns the trials best first.
func Tune(ctx context.Context, cfg EvalConfig, s *eval.Split, opt eval.SearchOptions) ([]eval.Trial, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	validation, err := eval.SplitByTime(s.Train, cfg.Holdout)
	if err != nil {
		return nil, fmt.Errorf("validation split: %w", err)
	}
	opt.Base = cfg.Hyper
	opt.Eval.Workers = cfg.Workers
	return eval.Search(ctx, validation, opt)
}
