package retrain

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/traindata"
	"github.com/recsys-dev/recsys/internal/tune"
)

// selection is what the gate decided on a holdout of some data.
type selection struct {
	split  *traindata.Split
	tuning *mf.Tuning
	mf     *mf.Model // ALS on the holdout's training part
	winner Candidate
	fitted Fitted // winner fitted on the holdout's training part
	report *eval.Report
	gate   Gate
	// blend is the weight grid the blend candidate's weights came from
	// when the search scored settings by the blend (nil otherwise).
	blend *eval.BlendSearch
	// folds are the grids blend pooled after the gate (reweigh).
	folds []*eval.BlendSearch
}

// record is the tuning record stored in the published model.
func (s *selection) record() *mf.Tuning {
	if s.tuning == nil {
		return nil
	}
	t := *s.tuning
	t.Candidate = s.winner.Name()
	t.Chosen = s.mf.Info().Hyper // with the defaults training filled in
	const maxTrials = 500        // keeps the model header small
	if len(t.Trials) > maxTrials {
		t.Trials = t.Trials[len(t.Trials)-maxTrials:]
	}
	return &t
}

// choose holds out each user's last events of data, tunes ALS on the
// training part (when TuneBudget > 0), fits every candidate on it,
// evaluates them next to popularity, item-kNN and the serving model, and
// gates: the best candidate wins unless a baseline beats it, it is below the
// serving model by more than the tolerance, or it is broken. A refusal
// returns the selection and an error wrapping ErrRefused.
func (c *Config) choose(ctx context.Context, data *traindata.Data, serving *mf.Model) (*selection, error) {
	split, err := traindata.SplitByTime(data, c.Holdout)
	if err != nil {
		return nil, fmt.Errorf("holdout split: %w", err)
	}
	sel := &selection{split: split}
	if c.TuneBudget > 0 {
		if err := c.tune(ctx, sel, serving); err != nil {
			return nil, err
		}
	}
	fitted, recs, err := c.trainCandidates(ctx, sel)
	if err != nil {
		return nil, err
	}
	refused, err := c.evaluateAndGate(ctx, sel, fitted, recs, data, serving)
	if refused {
		return sel, err
	}
	if err != nil {
		return nil, err
	}
	return sel, nil
}

// tune searches the ALS settings on the holdout's training part (package
// tune), warm-started from the serving model's, and sets c.Hyper to the
// chosen ones.
func (c *Config) tune(ctx context.Context, sel *selection, serving *mf.Model) error {
	log, split := c.Logger, sel.split
	var warm *mf.Hyperparameters
	if serving != nil {
		h := serving.Info().Hyper
		if t := serving.Info().Tuning; t != nil {
			h = t.Chosen
		}
		warm = &h
	}
	// With a blend candidate, each setting is scored by the blend it
	// would serve, and the chosen setting's weight grid is the blend's
	// (no second validation model).
	var bc *BlendCandidate
	for _, cand := range c.Candidates {
		if b, ok := cand.(*BlendCandidate); ok && b.params == nil {
			bc = b
			break
		}
	}
	// The search ranks settings, and chooses the blend's weights, by
	// NDCG at a cut-off of at least 20: at 10 the choice among the
	// weight grid's points follows noise (on MovieLens 100K, validation
	// on 943 users chose weights 4% worse on the test part).
	tc := tune.Config{
		Budget: c.TuneBudget, Base: c.Hyper, Warm: warm, Metric: eval.Key(eval.MetricNDCG, max(c.K, 20)),
		Workers: c.Workers, Seed: uint64(c.Hyper.Seed), Progress: c.TuneProgress, Now: c.TuneClock,
	}
	if bc != nil {
		tc.Blend = &eval.BlendOptions{Seed: uint64(c.Hyper.Seed), Workers: c.Workers}
	}
	log.Info("tuning", "budget", c.TuneBudget.String(), "warm_start", warm != nil, "scored_by", map[bool]string{false: "als", true: blendName}[bc != nil])
	res, err := tune.Run(ctx, split.Train, tc)
	if err != nil {
		return fmt.Errorf("tune: %w", err)
	}
	sel.tuning = res.Tuning
	if bc != nil && res.Blend != nil {
		bc.choose(res.Blend, log)
		sel.blend = res.Blend
	}
	c.Hyper = sel.tuning.Chosen
	log.Info("tuned", "trials", len(sel.tuning.Trials),
		"took", time.Duration(sel.tuning.UsedSeconds*float64(time.Second)).Round(time.Second).String(),
		"chosen", fmt.Sprintf("%+v", c.Hyper), "validation_"+sel.tuning.Metric, sel.tuning.Score)
	return nil
}

// trainCandidates trains ALS on the holdout's training part and fits every
// candidate on it; recs are the candidates followed by the baselines
// (popularity, and item-kNN unless SkipBaselines).
func (c *Config) trainCandidates(ctx context.Context, sel *selection) ([]Fitted, []eval.Recommender, error) {
	log, split := c.Logger, sel.split
	var err error
	if sel.mf, err = c.train(ctx, "holdout", split.Matrix); err != nil {
		return nil, nil, err
	}
	var recs []eval.Recommender
	fitted := make([]Fitted, len(c.Candidates))
	for i, cand := range c.Candidates {
		if fitted[i], err = cand.Fit(ctx, FitInput{Data: split.Train, MF: sel.mf, Workers: c.Workers, Logger: log}); err != nil {
			return nil, nil, fmt.Errorf("fit candidate %s: %w", cand.Name(), err)
		}
		recs = append(recs, fitted[i])
	}
	recs = append(recs, eval.NewPopularity(split.Matrix))
	if !c.SkipBaselines {
		knn, err := eval.NewItemKNN(ctx, split.Matrix, eval.KNNOptions{Workers: c.Workers})
		if err != nil {
			return nil, nil, fmt.Errorf("item-kNN baseline: %w", err)
		}
		recs = append(recs, knn)
	}
	return fitted, recs, nil
}

// evaluateAndGate evaluates the fitted candidates and the baselines on the
// holdout, picks the best candidate, compares it with the serving model on
// the test users newer than its data, and gates. refused reports that err
// is the gate's refusal (wrapping ErrRefused), sel then complete.
func (c *Config) evaluateAndGate(ctx context.Context, sel *selection, fitted []Fitted, recs []eval.Recommender, data *traindata.Data, serving *mf.Model) (refused bool, err error) {
	log, split := c.Logger, sel.split
	ks := []int{10, 20}
	if c.K != 10 && c.K != 20 {
		ks = append(ks, c.K)
	}
	opts := eval.Options{Ks: ks, Workers: c.Workers}
	g := &sel.gate
	*g = Gate{Metric: eval.Key(eval.MetricNDCG, c.K), Serving: math.NaN(), NewOnFresh: math.NaN(), KNN: math.NaN()}
	sel.report, err = eval.Run(ctx, split, recs, opts)
	if errors.Is(err, mf.ErrNotPositiveDefinite) {
		sel.winner, sel.fitted = c.Candidates[0], fitted[0]
		g.Candidate = sel.winner.Name()
		g.Reason = "new model has degenerate factors: a user cannot be folded in"
		return true, fmt.Errorf("%w: %s", ErrRefused, g.Reason)
	}
	if err != nil {
		return false, fmt.Errorf("evaluate: %w", err)
	}
	// The best candidate on the holdout (the first of equals).
	best := 0
	for i, cand := range c.Candidates {
		r, _ := sel.report.Model(cand.Name())
		b, _ := sel.report.Model(c.Candidates[best].Name())
		if r.Metrics[g.Metric] > b.Metrics[g.Metric] {
			best = i
		}
	}
	sel.winner, sel.fitted = c.Candidates[best], fitted[best]
	g.Candidate = sel.winner.Name()
	if serving != nil {
		until := serving.Info().DataUntil
		if until.IsZero() {
			until = serving.Info().TrainedAt // older artifacts: training ended after its data
		}
		fresh := freshCases(split, data, until)
		g.FreshCases = len(fresh.Cases)
		if len(fresh.Cases) >= c.MinFreshCases {
			cmp, err := eval.Run(ctx, fresh, []eval.Recommender{sel.fitted, NewServingRecommender(serving, split.Matrix.ColIDs)}, opts)
			if err != nil {
				return false, fmt.Errorf("compare with the serving model: %w", err)
			}
			n, _ := cmp.Model(sel.winner.Name())
			s, _ := cmp.Model(servingName)
			g.NewOnFresh, g.Serving = n.Metrics[g.Metric], s.Metrics[g.Metric]
		} else {
			log.Warn("too few test users with events after the serving model's data to compare with it",
				"fresh", len(fresh.Cases), "need", c.MinFreshCases, "serving_data_until", serving.Info().DataUntil)
		}
	}
	c.gate(g, sel.report)
	log.Info("quality gate", "metric", g.Metric, "candidate", g.Candidate, "new", g.New, "popularity", g.Popularity,
		"itemknn", g.KNN, "serving", g.Serving, "new_on_fresh", g.NewOnFresh, "fresh_cases", g.FreshCases,
		"passed", g.Passed, "reason", g.Reason)
	if !g.Passed {
		return true, fmt.Errorf("%w: %s", ErrRefused, g.Reason)
	}
	return false, nil
}

// reweigh re-chooses the winning blend candidate's weights for the refit
// (BlendCandidate.reweigh: the search's validation grid pooled with a grid
// on the holdout) once the gate has decided, and records the pooled grid
// in sel.blend. Other winners are left as they are.
func (c *Config) reweigh(ctx context.Context, sel *selection) error {
	bc, ok := sel.winner.(*BlendCandidate)
	if !ok {
		return nil
	}
	if err := bc.reweigh(ctx, sel.split, sel.mf, uint64(c.Hyper.Seed), c.Workers, c.Logger); err != nil {
		return err
	}
	if bc.folds != nil {
		sel.blend, sel.folds = bc.grid, bc.folds
	}
	return nil
}

// fit trains ALS on data with c.Hyper and fits the candidate on it: the
// model a passed gate publishes, and the MF model under it.
func (c *Config) fit(ctx context.Context, phase string, cand Candidate, data *traindata.Data) (Fitted, *mf.Model, error) {
	full, err := data.Matrix()
	if err != nil {
		return nil, nil, fmt.Errorf("build %s matrix: %w", phase, err)
	}
	m, err := c.train(ctx, phase, full)
	if err != nil {
		return nil, nil, err
	}
	f, err := cand.Fit(ctx, FitInput{Data: data, MF: m, Workers: c.Workers, Logger: c.Logger})
	if err != nil {
		return nil, nil, fmt.Errorf("fit candidate %s (%s): %w", cand.Name(), phase, err)
	}
	return f, m, nil
}

// gate applies the publishing rules to the winning candidate g.Candidate.
func (c *Config) gate(g *Gate, r *eval.Report) {
	key := g.Metric
	a, _ := r.Model(g.Candidate)
	p, _ := r.Model("popularity")
	g.New, g.Popularity = a.Metrics[key], p.Metrics[key]
	if k, ok := r.Model("itemknn"); ok {
		g.KNN = k.Metrics[key]
	}
	compared := !math.IsNaN(g.Serving)
	switch {
	case math.IsNaN(g.New) || math.IsInf(g.New, 0):
		g.Reason = fmt.Sprintf("new model's (%s) %s is %v", g.Candidate, key, g.New)
	case g.New < g.Popularity && !(g.KNN > g.Popularity):
		g.Reason = fmt.Sprintf("popularity wins: its %s %.4f is above the best candidate's (%s) %.4f; the serving model stays", key, g.Popularity, g.Candidate, g.New)
	case g.New < g.KNN:
		g.Reason = fmt.Sprintf("item-kNN wins: its %s %.4f is above the best candidate's (%s) %.4f; the serving model stays", key, g.KNN, g.Candidate, g.New)
	case compared && g.NewOnFresh < g.Serving*(1-c.Tolerance):
		g.Reason = fmt.Sprintf("new model's (%s) %s %.4f is below the serving model's %.4f by more than %.0f%% (on %d users with events newer than the serving model)",
			g.Candidate, key, g.NewOnFresh, g.Serving, c.Tolerance*100, g.FreshCases)
	default:
		g.Passed = true
		g.Reason = fmt.Sprintf("new model (%s) %s %.4f vs popularity %.4f", g.Candidate, key, g.New, g.Popularity)
		if !math.IsNaN(g.KNN) {
			g.Reason += fmt.Sprintf(", item-kNN %.4f", g.KNN)
		}
		if compared {
			g.Reason += fmt.Sprintf("; %.4f vs the serving model's %.4f on %d users with newer events (tolerance %.0f%%)",
				g.NewOnFresh, g.Serving, g.FreshCases, c.Tolerance*100)
		} else if g.FreshCases > 0 || c.servingGiven {
			g.Reason += fmt.Sprintf("; serving model not compared (%d users with newer events, %d needed)", g.FreshCases, c.MinFreshCases)
		}
	}
}
