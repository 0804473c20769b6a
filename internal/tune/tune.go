// Package tune chooses ALS hyperparameters by itself, within a time budget,
// so the retraining job needs no data scientist.
//
// The search is budgeted successive halving (Jamieson & Talwalkar 2016) over
// factors (32..256), the regularization λ, the confidence scale α, the
// frequency-regularization exponent ν and the confidence weighting (linear or
// log). A bracket trains a set of settings for a few ALS iterations on a
// validation split, keeps the best third, trains those longer, and so on up
// to the full iteration count. The first bracket holds the previous model's
// chosen settings (warm start) and settings that did well on public data
// (priors); its first rung trains the widest prior (256 factors) first, then
// the warm start, then the rest cheapest first. Later brackets sample half
// around the best setting so far (coarse to fine) and half anywhere. Before
// each trial its time is estimated from the trials so far; a trial that
// would overrun the budget is not started (the widest prior's first trial is
// instead cut at a quarter of the budget; a cut trial's factor count is
// then taken as twice as slow as it ran), and one that runs over is
// cancelled at the deadline, so the search ends within the budget. Shorter
// budgets validate on fewer users (maxCasesFor), so wide settings stay
// affordable.
//
// The validation split is carved from the data the caller passes (each
// user's last event is validation, the rest trains): pass the training part
// only, never the test part.
package tune

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/traindata"
)

// Config is one search.
type Config struct {
	// Budget is the time the search may take (training and validation of
	// every trial). Required.
	Budget time.Duration
	// Base gives what is not searched (iterations of the last rung, solver,
	// CG steps, seed) and the fallback when no trial finishes.
	Base mf.Hyperparameters
	// Warm, when set, is tried first: the previous model's chosen settings.
	Warm *mf.Hyperparameters
	// Metric is maximized on validation (default "ndcg@10").
	Metric string
	// MaxCases caps the validation users scored per trial (a seeded
	// sample; default maxCasesFor(Budget): 5000 with 10 minutes or more,
	// proportionally fewer with less, at least 1000), which bounds a
	// trial's validation time on a large shop.
	MaxCases int
	Workers  int
	Seed     uint64
	// Blend, when set, scores each trial by the order-aware blend it
	// would serve (eval.BlendValidator: the best point of the blend's
	// weight grid on the same validation users) instead of by MF alone, so
	// the search picks the MF settings that work best under the blend. The
	// metric must then be ndcg@K or hr@K; Blend.K and Blend.Users are set
	// from it and MaxCases.
	Blend *eval.BlendOptions
	// Progress, if set, receives every trial as it ends.
	Progress func(mf.TuningTrial)
	// Now is the clock (default time.Now). With another clock a trial
	// that runs over the deadline is not cancelled (tests use a clock that
	// ticks per call, which makes the search deterministic).
	Now func() time.Time
}

// The search space.
var (
	factorChoices = []int{32, 64, 128, 256}
	nuChoices     = []float64{0, 0.5, 1}
	confChoices   = []string{mf.ConfidenceLinear, mf.ConfidenceLog}
)

const (
	lambdaMin, lambdaMax = 0.005, 50.0
	alphaMin, alphaMax   = 0.3, 60.0
	eta                  = 3 // successive halving keeps 1/eta per rung
	bracketSize          = 9
)

// priors are settings that won on public data sets: the hand-tuned
// settings of docs/training.md (MovieLens 100K, Ta-Feng, DIGINETICA), Amazon
// Beauty's tuned 128-factor setting and the setting the default job chose
// there: a good region to look at first. Ta-Feng's is the widest (256
// factors); the first rung always trains it (see widest).
var priors = []mf.Hyperparameters{
	{Factors: 32, Regularization: 0.05, RegExponent: 1, Alpha: 1},                               // MovieLens 100K
	{Factors: 256, Regularization: 10, RegExponent: 0.5, Alpha: 5},                              // Ta-Feng
	{Factors: 64, Regularization: 1, RegExponent: 0, Alpha: 40},                                 // DIGINETICA
	{Factors: 128, Regularization: 5, RegExponent: 1, Alpha: 20},                                // Amazon Beauty
	{Factors: 128, Regularization: 1, RegExponent: 0.5, Alpha: 5, Confidence: mf.ConfidenceLog}, // Beauty, default job
}

// maxCasesFor is the default validation sample for a search of budget:
// 5000 users with 10 minutes or more, proportionally fewer with less (at
// least 1000). Most of a wide trial's time is the validation fold-ins
// (three per user with the blend): with a fixed 5000, a 6-minute search
// under load spent half its budget on the 256-factor trial alone.
func maxCasesFor(budget time.Duration) int {
	const full, least = 5000, 1000
	n := int(float64(full) * budget.Seconds() / (10 * time.Minute).Seconds())
	return min(full, max(least, n))
}

// widestLimit caps the widest prior's first trial: a quarter of the
// budget, so a search whose machine is too slow for it loses that quarter,
// not half, and still compares the other settings.
func widestLimit(budget time.Duration) time.Duration { return budget / 4 }

// widest is the prior with the most factors. Extrapolating a narrow
// trial's time to it (it grows faster than linearly in the factors) would
// often rule it out under a budget, so it never ran; instead it is the
// first trial of the first rung, before any narrow one, capped at a quarter
// of the budget (widestLimit; cut there, it is recorded as aborted and the
// search goes on).
func widest() mf.Hyperparameters {
	w := priors[0]
	for _, p := range priors[1:] {
		if p.Factors > w.Factors {
			w = p
		}
	}
	return w
}

// Result is a search's outcome.
type Result struct {
	// Tuning is the chosen setting and the trace.
	Tuning *mf.Tuning
	// Blend is the blend's weight grid on validation for the chosen
	// setting's model (its best point is the weights to serve); nil unless
	// Config.Blend was set and the chosen setting finished a trial.
	Blend *eval.BlendSearch
}

// Search runs the search on a validation split of train and returns the
// chosen settings with the trace. The context's cancellation stops it with
// an error; the budget stops it with a result.
func Search(ctx context.Context, train *traindata.Data, cfg Config) (*mf.Tuning, error) {
	r, err := Run(ctx, train, cfg)
	if err != nil {
		return nil, err
	}
	return r.Tuning, nil
}

// Run is Search with the blend's validation grid of the chosen setting.
func Run(ctx context.Context, train *traindata.Data, cfg Config) (*Result, error) {
	if cfg.Budget <= 0 {
		return nil, errors.New("tune: budget must be > 0")
	}
	if err := cfg.Base.Validate(); err != nil {
		return nil, fmt.Errorf("tune: base settings: %w", err)
	}
	if cfg.Metric == "" {
		cfg.Metric = eval.Key(eval.MetricNDCG, 10)
	}
	name, k, err := eval.ParseKey(cfg.Metric)
	if err != nil {
		return nil, fmt.Errorf("tune: %w", err)
	}
	if cfg.Blend != nil && name != eval.MetricNDCG && name != eval.MetricHR {
		return nil, fmt.Errorf("tune: scoring by the blend needs an ndcg@K or hr@K metric, got %q", cfg.Metric)
	}
	if cfg.MaxCases <= 0 {
		cfg.MaxCases = maxCasesFor(cfg.Budget)
	}
	realClock := cfg.Now == nil
	if realClock {
		cfg.Now = time.Now
	}
	if cfg.Base.Iterations < 1 {
		cfg.Base.Iterations = 15
	}
	validation, err := traindata.SplitByTime(train, traindata.TimeSplit{LastN: 1})
	if err != nil {
		return nil, fmt.Errorf("tune: validation split: %w", err)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7e57))
	if len(validation.Cases) > cfg.MaxCases {
		rng.Shuffle(len(validation.Cases), func(i, j int) {
			validation.Cases[i], validation.Cases[j] = validation.Cases[j], validation.Cases[i]
		})
		validation.Cases = validation.Cases[:cfg.MaxCases]
		slices.SortFunc(validation.Cases, func(a, b traindata.Case) int { return cmp.Compare(a.User, b.User) })
	}
	s := &search{cfg: cfg, k: k, metric: name, validation: validation, rng: rng, start: cfg.Now(), cost: map[int]costModel{}, realClock: realClock,
		maxFactors: factorCap(validation.Train.Items)}
	if cfg.Blend != nil {
		opt := *cfg.Blend
		opt.K, opt.Users = k, len(validation.Cases)
		if opt.Workers <= 0 {
			opt.Workers = cfg.Workers
		}
		if s.blend, err = eval.NewBlendValidator(ctx, validation, opt); err != nil {
			return nil, fmt.Errorf("tune: blend validation: %w", err)
		}
	}
	s.deadline = s.start.Add(cfg.Budget)
	s.ctx = ctx
	if realClock { // a trial running over is cancelled at the deadline
		tctx, cancel := context.WithDeadline(ctx, s.deadline)
		defer cancel()
		s.ctx = tctx
	}
	for bracket := 0; ; bracket++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !s.bracket(bracket) {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.result(), nil
}

type search struct {
	cfg        Config
	k          int
	metric     string // the metric's name (ndcg, hr, …)
	validation *traindata.Split
	blend      *eval.BlendValidator // nil: trials score MF alone
	searches   []*eval.BlendSearch  // per trial, with blend
	rng        *rand.Rand
	ctx        context.Context
	start      time.Time
	deadline   time.Time
	trials     []mf.TuningTrial
	cost       map[int]costModel // by factor count
	realClock  bool              // trials can be cut by the clock
	// maxFactors caps the factors proposed (0: no cap): more factors than
	// items add nothing (the item factors' rank is at most the item count)
	// and cost time. See factorCap.
	maxFactors int
	seen       map[string]bool
}

// costModel predicts a trial's seconds as perIter·iterations + fixed from
// the last trial with that factor count.
type costModel struct{ perIter, fixed float64 }

// cutCost is the cost model of a factor count whose trial of iters
// iterations was cut after seconds without finishing: its time is unknown
// and larger, so it is taken as twice as long. With the time it ran as the
// estimate, a second 256-factor trial on Amazon Beauty (6 min budget, load
// 20) was expected to fit the 3 minutes left, started, and was cancelled at
// the deadline: the two cut trials took 267 s of the 360.
func cutCost(seconds float64, iters int) costModel {
	return costModel{perIter: 2 * seconds / float64(max(1, iters))}
}

// factorCap is the largest factor choice not above items (items itself
// when every choice is).
func factorCap(items int) int {
	c := items
	for _, f := range factorChoices {
		if f <= items {
			c = f
		}
	}
	return c
}

// rungs are the iteration counts of successive halving, ending at Base's.
func (s *search) rungs() []int {
	full := s.cfg.Base.Iterations
	r := []int{max(2, full/5), max(3, full/2), full}
	return slices.Compact(slices.Sorted(slices.Values(r)))
}

// bracket runs one round of successive halving; false when the budget is
// spent (or nothing was left to try).
func (s *search) bracket(b int) bool {
	configs, pinned := s.propose(b)
	if len(configs) == 0 {
		return false
	}
	rungs := s.rungs()
	for r, iters := range rungs {
		type result struct {
			h     mf.Hyperparameters
			score float64
		}
		var done []result
		// Cheap settings first, so a tight budget still compares many;
		// the first rung of the first bracket starts with the widest prior
		// and the warm start (propose puts them first).
		rest := configs
		if r == 0 {
			rest = configs[pinned:]
		}
		slices.SortStableFunc(rest, func(a, b mf.Hyperparameters) int { return cmp.Compare(a.Factors, b.Factors) })
		for i, h := range configs {
			h.Iterations = iters
			var limit time.Duration
			if b == 0 && r == 0 && i == 0 { // the widest prior: see widest
				if !s.cfg.Now().Before(s.deadline) {
					return false
				}
				limit = widestLimit(s.cfg.Budget)
			} else if !s.fits(h) {
				continue
			}
			t := s.trial(h, b, r, limit)
			if t.Aborted && s.ctx.Err() != nil {
				return false
			}
			if !t.Aborted {
				done = append(done, result{h, t.Score})
			}
		}
		if len(done) == 0 {
			return false
		}
		if r == len(rungs)-1 {
			break
		}
		slices.SortStableFunc(done, func(a, b result) int { return cmp.Compare(b.score, a.score) })
		keep := max(1, (len(done)+eta-1)/eta)
		configs = configs[:0]
		for _, d := range done[:keep] {
			configs = append(configs, d.h)
		}
	}
	return s.cfg.Now().Before(s.deadline)
}

// fits reports whether h is expected to finish before the deadline. Without
// a measurement for its factor count it is extrapolated from the nearest
// measured count (training grows about quadratically in factors, the
// fold-in of validation users cubically: the estimate scales by f^2.5);
// with none at all, it is tried. A fifth of what is left is kept as margin
// for a loaded machine.
func (s *search) fits(h mf.Hyperparameters) bool {
	left := s.deadline.Sub(s.cfg.Now()).Seconds()
	if left <= 0 {
		return false
	}
	c, ok := s.cost[h.Factors]
	if !ok {
		best := 0
		for f := range s.cost {
			if best == 0 || math.Abs(math.Log(float64(f)/float64(h.Factors))) < math.Abs(math.Log(float64(best)/float64(h.Factors))) {
				best = f
			}
		}
		if best == 0 {
			return true
		}
		scale := math.Pow(float64(h.Factors)/float64(best), 2.5)
		c = costModel{s.cost[best].perIter * scale, s.cost[best].fixed * scale}
	}
	return c.perIter*float64(h.Iterations)+c.fixed <= 0.8*left
}

// trial trains h on the validation split's training part and scores it.
// A limit > 0 cuts it after that long (with the real clock): it is then
// recorded as aborted, and its time so far as a lower bound of its cost.
func (s *search) trial(h mf.Hyperparameters, bracket, rung int, limit time.Duration) mf.TuningTrial {
	ctx := s.ctx
	if limit > 0 && s.realClock {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	start := s.cfg.Now()
	t := mf.TuningTrial{Hyper: h, Bracket: bracket, Rung: rung, Cases: len(s.validation.Cases)}
	model, _, err := eval.TrainALS(ctx, s.validation, h, s.cfg.Workers)
	trained := s.cfg.Now()
	var score float64
	var bs *eval.BlendSearch
	switch {
	case err != nil:
	case s.blend != nil:
		if bs, err = s.blend.Search(ctx, model); err == nil {
			best := bs.Best(true, true, true)
			score = best.NDCG
			if s.metric == eval.MetricHR {
				score = best.HR
			}
		}
	default:
		var res eval.ModelResult
		res, err = eval.Evaluate(ctx, s.validation, eval.NewALS(model, nil), eval.Options{Ks: []int{s.k}, Workers: s.cfg.Workers})
		score = res.Metrics[s.cfg.Metric]
	}
	end := s.cfg.Now()
	t.Seconds = end.Sub(start).Seconds()
	switch {
	case err != nil && ctx.Err() != nil:
		t.Aborted = true
		if s.ctx.Err() == nil { // cut by its own limit
			s.cost[h.Factors] = cutCost(t.Seconds, h.Iterations)
		}
	case err != nil:
		// Settings that diverge or cannot fold in score nothing.
		t.Score = 0
	default:
		t.Score = score
		perIter := trained.Sub(start).Seconds() / float64(max(1, h.Iterations))
		s.cost[h.Factors] = costModel{perIter: perIter, fixed: end.Sub(trained).Seconds()}
	}
	s.trials = append(s.trials, t)
	s.searches = append(s.searches, bs)
	if s.cfg.Progress != nil {
		s.cfg.Progress(t)
	}
	return t
}

// propose returns the settings of bracket b, never one tried in an
// earlier bracket, and how many of them lead the first rung whatever
// their cost: in the first bracket the widest prior, then the warm start.
func (s *search) propose(b int) (out []mf.Hyperparameters, pinned int) {
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	add := func(h mf.Hyperparameters) {
		base := s.cfg.Base
		base.Factors, base.Regularization, base.RegExponent, base.Alpha, base.Confidence =
			h.Factors, h.Regularization, h.RegExponent, h.Alpha, h.Confidence
		if base.Confidence == "" {
			base.Confidence = mf.ConfidenceLinear
		}
		if s.maxFactors > 0 && base.Factors > s.maxFactors {
			base.Factors = s.maxFactors
		}
		key := fmt.Sprintf("%d/%.3g/%g/%.3g/%s", base.Factors, base.Regularization, base.RegExponent, base.Alpha, base.Confidence)
		if len(out) >= bracketSize || s.seen[key] || base.Validate() != nil {
			return
		}
		s.seen[key] = true
		out = append(out, base)
	}
	if b == 0 {
		add(widest())
		if s.cfg.Warm != nil {
			add(*s.cfg.Warm)
		}
		pinned = len(out)
		for _, p := range priors {
			add(p)
		}
		add(s.cfg.Base)
	}
	best, ok := s.best()
	for tries := 0; len(out) < bracketSize && tries < 100*bracketSize; tries++ {
		if ok && tries%2 == 0 {
			add(s.near(best))
		} else {
			add(s.random())
		}
	}
	return out, pinned
}

// random draws a setting from the whole space (λ, α log-uniform).
func (s *search) random() mf.Hyperparameters {
	return mf.Hyperparameters{
		Factors:        factorChoices[s.rng.IntN(len(factorChoices))],
		Regularization: logUniform(s.rng, lambdaMin, lambdaMax),
		RegExponent:    nuChoices[s.rng.IntN(len(nuChoices))],
		Alpha:          logUniform(s.rng, alphaMin, alphaMax),
		Confidence:     confChoices[s.rng.IntN(len(confChoices))],
	}
}

// near perturbs h: factors one step up or down, λ and α by a factor of up
// to about 3, sometimes a different ν or weighting.
func (s *search) near(h mf.Hyperparameters) mf.Hyperparameters {
	i := slices.Index(factorChoices, h.Factors)
	if i < 0 {
		i = 1
	}
	i = min(len(factorChoices)-1, max(0, i+s.rng.IntN(3)-1))
	h.Factors = factorChoices[i]
	h.Regularization = clamp(h.Regularization*math.Exp(s.rng.NormFloat64()*0.8), lambdaMin, lambdaMax)
	h.Alpha = clamp(h.Alpha*math.Exp(s.rng.NormFloat64()*0.8), alphaMin, alphaMax)
	if s.rng.IntN(4) == 0 {
		h.RegExponent = nuChoices[s.rng.IntN(len(nuChoices))]
	}
	if s.rng.IntN(5) == 0 {
		h.Confidence = confChoices[s.rng.IntN(len(confChoices))]
	}
	return h
}

// best is the best finished trial of the highest rung any trial reached
// (earlier wins ties): fewer iterations cannot be compared with more.
func (s *search) best() (mf.Hyperparameters, bool) {
	t, ok := s.bestTrial()
	return t.Hyper, ok
}

func (s *search) bestTrial() (mf.TuningTrial, bool) {
	k := s.bestIndex()
	if k < 0 {
		return mf.TuningTrial{}, false
	}
	return s.trials[k], true
}

// bestIndex is bestTrial's index in s.trials, -1 if none finished.
func (s *search) bestIndex() int {
	best := -1
	for k, t := range s.trials {
		if t.Aborted {
			continue
		}
		if b := s.trials[max(best, 0)]; best < 0 || t.Rung > b.Rung || (t.Rung == b.Rung && t.Score > b.Score) {
			best = k
		}
	}
	return best
}

// result is the chosen setting at the full iteration count and the trace.
func (s *search) result() *Result {
	out := &mf.Tuning{Metric: s.cfg.Metric, BudgetSeconds: s.cfg.Budget.Seconds(),
		UsedSeconds: s.cfg.Now().Sub(s.start).Seconds(), Trials: s.trials, Scorer: "als"}
	res := &Result{Tuning: out}
	if s.blend != nil {
		out.Scorer = "als+blend"
	}
	if k := s.bestIndex(); k >= 0 {
		out.Chosen, out.Score = s.trials[k].Hyper, s.trials[k].Score
		res.Blend = s.searches[k]
	} else if s.cfg.Warm != nil {
		out.Chosen = *s.cfg.Warm
	} else {
		out.Chosen = s.cfg.Base
	}
	out.Chosen.Iterations = s.cfg.Base.Iterations
	out.Chosen.Solver, out.Chosen.CGSteps, out.Chosen.Seed = s.cfg.Base.Solver, s.cfg.Base.CGSteps, s.cfg.Base.Seed
	return res
}

func logUniform(rng *rand.Rand, lo, hi float64) float64 {
	return roundSig(math.Exp(math.Log(lo) + rng.Float64()*(math.Log(hi)-math.Log(lo))))
}

func clamp(v, lo, hi float64) float64 { return roundSig(min(hi, max(lo, v))) }

// roundSig keeps two significant digits, so settings print readably and
// near-duplicates collapse.
func roundSig(v float64) float64 {
	if v == 0 {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(math.Abs(v)))-1)
	return math.Round(v/p) * p
}
