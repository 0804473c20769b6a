package retrain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/traindata"
)

// EvalConfig is an offline comparison of ALS with the baselines.
type EvalConfig struct {
	Hyper     mf.Hyperparameters
	Weighting event.Weighting // default event.DefaultWeighting()
	// AsOf is the time decay is measured from. Default: the latest event of
	// the inputs, so a historical data set is weighed as it was when it
	// ended, not decayed to nothing by the years since.
	AsOf time.Time
	// Split is "time" (per-user time holdout, Holdout), "last"
	// (leave-last-out: each user's last event, users with >= 3 events; see
	// traindata.LeaveLastOut) or "user" (strong generalization, Users). Ignored
	// for a pre-split pair.
	Split   string
	Holdout traindata.TimeSplit
	Users   traindata.UserSplit
	Ks      []int
	KNN     eval.KNNOptions
	Workers int
	// Served adds the "served" row beside ALS (eval.Options.Served): the
	// model searched through its partitioned index, forced; with Job,
	// the job's model served so ("served blend" for a blend).
	Served bool
	// Job evaluates what the retraining job would publish from the
	// split's training part (EvaluateJob): the same tuning (TuneBudget),
	// the same candidates and gate, instead of ALS with Hyper.
	Job          bool
	TuneBudget   time.Duration
	TuneProgress func(mf.TuningTrial)
	TuneClock    func() time.Time // tests: see Config.TuneClock
	Candidates   []Candidate
	Blend        bool // as Config.Blend
	Logger       *slog.Logger
}

func (c *EvalConfig) defaults() error {
	if c.Weighting == (event.Weighting{}) {
		c.Weighting = event.DefaultWeighting()
	}
	if c.Holdout == (traindata.TimeSplit{}) {
		c.Holdout = traindata.TimeSplit{LastN: 1}
	}
	if c.Users == (traindata.UserSplit{}) {
		c.Users = traindata.UserSplit{Fraction: 0.1, Seed: 1}
	}
	if c.KNN.Workers == 0 {
		c.KNN.Workers = c.Workers
	}
	return c.Hyper.Validate()
}

// collect reads sources into one Data (shared id tables) and returns, for
// each source, the index of its first event.
// A zero asOf is the latest event's time (the sources are read twice).
func collect(ctx context.Context, w event.Weighting, asOf time.Time, srcs ...Source) (*traindata.Data, []int, error) {
	if asOf.IsZero() {
		var err error
		if asOf, err = Latest(ctx, srcs...); err != nil {
			return nil, nil, err
		}
	}
	col := traindata.NewCollector(w, asOf)
	starts := make([]int, len(srcs))
	for i, src := range srcs {
		starts[i] = col.Len()
		if err := src(ctx, col.Add); err != nil {
			return nil, nil, err
		}
	}
	return col.Data(), starts, nil
}

// Latest reads the sources and returns the time of their latest event (zero
// without events): the "as of" of a historical data set.
func Latest(ctx context.Context, srcs ...Source) (time.Time, error) {
	var latest time.Time
	for _, src := range srcs {
		err := src(ctx, func(e event.Event) error {
			if e.Time.After(latest) {
				latest = e.Time
			}
			return nil
		})
		if err != nil {
			return time.Time{}, fmt.Errorf("read events: %w", err)
		}
	}
	return latest, nil
}

// MakeSplit reads src and splits it as cfg says.
func MakeSplit(ctx context.Context, cfg EvalConfig, src Source) (*traindata.Split, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	d, _, err := collect(ctx, cfg.Weighting, cfg.AsOf, src)
	if err != nil {
		return nil, err
	}
	switch cfg.Split {
	case "", "time":
		return traindata.SplitByTime(d, cfg.Holdout)
	case "last":
		return traindata.LeaveLastOut(d)
	case "user":
		return traindata.SplitByUser(d, cfg.Users)
	}
	return nil, fmt.Errorf("split must be time, last or user, got %q", cfg.Split)
}

// MakePairSplit reads a pre-split pair: train's events are trained on,
// test's are held out, over shared id tables.
func MakePairSplit(ctx context.Context, cfg EvalConfig, train, test Source) (*traindata.Split, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	d, starts, err := collect(ctx, cfg.Weighting, cfg.AsOf, train, test)
	if err != nil {
		return nil, err
	}
	first := starts[1]
	return traindata.SplitHeld(d, func(k int) bool { return k >= first }, "given train/test files")
}

// Evaluate trains ALS on the split and reports it next to popularity and
// item-kNN, all on the same cases with full ranking.
func Evaluate(ctx context.Context, cfg EvalConfig, s *traindata.Split) (*eval.Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return eval.Compare(ctx, s, cfg.Hyper, cfg.KNN, eval.Options{Ks: cfg.Ks, Workers: cfg.Workers, Served: cfg.Served})
}

// JobEvaluation is what EvaluateJob measured.
type JobEvaluation struct {
	// Report has the job's model first (named for the candidate the gate
	// chose), then popularity and item-kNN, on the split's test cases.
	Report *eval.Report
	// Gate is the job's verdict on its own holdout of the training part;
	// when it did not pass, the job would have published nothing.
	Gate   Gate
	Tuning *mf.Tuning
	// MF is the MF model under the job's model: ALS trained on the
	// split's training part with the settings the job chose (MF.Info().Hyper).
	MF *mf.Model
	// Blend is the validation grid the job chose its blend weights from
	// (nil when its search did not score settings by the blend):
	// eval.AblationRows with MF and Blend describes the published blend.
	// When the blend won, it pools Folds.
	Blend *eval.BlendSearch
	// Folds are the validation grids Blend pooled: the search's (each
	// user's second-to-last training event) and the holdout's (the last).
	Folds []*eval.BlendSearch
}

// EvaluateJob runs the retraining job's choice on s's training part (its
// holdout, tuning within cfg.TuneBudget, candidates and gate; the test
// cases are never read), fits the chosen candidate on the whole training
// part as the job's refit would, and evaluates it on s's test cases next to
// popularity and item-kNN.
func EvaluateJob(ctx context.Context, cfg EvalConfig, s *traindata.Split) (*JobEvaluation, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	jc := Config{Hyper: cfg.Hyper, Weighting: cfg.Weighting, AsOf: cfg.AsOf, TuneBudget: cfg.TuneBudget,
		TuneProgress: cfg.TuneProgress, TuneClock: cfg.TuneClock, Candidates: cfg.Candidates, Blend: cfg.Blend, Workers: cfg.Workers, Logger: cfg.Logger}
	if err := jc.defaults(); err != nil {
		return nil, err
	}
	sel, err := jc.choose(ctx, s.Train, nil)
	if err != nil && !errors.Is(err, ErrRefused) {
		return nil, err
	}
	if sel == nil || sel.winner == nil {
		return nil, err
	}
	if err != nil {
		jc.Logger.Warn("the job would publish nothing; evaluating its best candidate anyway", "reason", sel.gate.Reason)
	}
	if err := jc.reweigh(ctx, sel); err != nil {
		return nil, err
	}
	fitted, model, err := jc.fit(ctx, "eval", sel.winner, s.Train)
	if err != nil {
		return nil, err
	}
	knn, err := eval.NewItemKNN(ctx, s.Matrix, cfg.KNN)
	if err != nil {
		return nil, err
	}
	eopt := eval.Options{Ks: cfg.Ks, Workers: cfg.Workers}
	rep, err := eval.Run(ctx, s, []eval.Recommender{fitted, eval.NewPopularity(s.Matrix), knn}, eopt)
	if err != nil {
		return nil, err
	}
	if cfg.Served {
		// The job's model as recsysd serves it with the index forced.
		var row eval.ModelResult
		if bf, ok := fitted.(blendFitted); ok {
			row, err = eval.ServedBlendRow(ctx, s, bf.Blend, 0, eopt)
		} else {
			row, err = eval.ServedRow(ctx, s, fitted.Model(), 0, eopt)
		}
		if err != nil {
			return nil, err
		}
		rep.Models = slices.Insert(rep.Models, 1, row) // beside the job's model
	}
	return &JobEvaluation{Report: rep, Gate: sel.gate, Tuning: sel.tuning, MF: model, Blend: sel.blend, Folds: sel.folds}, nil
}

// Tune searches hyperparameters on a validation split carved from s's
// training events (the same kind of time holdout), never from s's test
// cases, and returns the trials best first.
func Tune(ctx context.Context, cfg EvalConfig, s *traindata.Split, opt eval.SearchOptions) ([]eval.Trial, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	validation, err := traindata.SplitByTime(s.Train, cfg.Holdout)
	if err != nil {
		return nil, fmt.Errorf("validation split: %w", err)
	}
	opt.Base = cfg.Hyper
	opt.Eval.Workers = cfg.Workers
	return eval.Search(ctx, validation, opt)
}
