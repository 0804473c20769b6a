package tune

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/sparse/sparsetest"
	"github.com/recsys-dev/recsys/internal/traindata"
)

// tinyData: 150 users, 80 items, 4 planted clusters.
func tinyData() *traindata.Data {
	g := sparsetest.Generate(sparsetest.Config{Users: 150, Items: 80, Clusters: 4, PerUser: 10, Zipf: 0.8, Noise: 0.1, Seed: 3})
	return &traindata.Data{Users: g.Users, Items: g.Items, UserIDs: sparsetest.IDs("u", g.Users), ItemIDs: sparsetest.IDs("i", g.Items),
		Triples: g.Triples, Time: g.Time}
}

// tick is a clock that advances by step on every call, so a search's
// course depends only on its inputs, never on the machine's speed.
func tick(step time.Duration) func() time.Time {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { now = now.Add(step); return now }
}

func base() mf.Hyperparameters {
	return mf.Hyperparameters{Factors: 8, Regularization: 0.1, Alpha: 2, Iterations: 6, Solver: "cg", CGSteps: 3, Seed: 1}
}

func TestSearchStaysWithinBudgetAndRecordsTheTrace(t *testing.T) {
	var seen []mf.TuningTrial
	res, err := Search(context.Background(), tinyData(), Config{
		Budget: 40 * time.Second, Base: base(), Workers: 2, Seed: 1, Now: tick(time.Second),
		Progress: func(tr mf.TuningTrial) { seen = append(seen, tr) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.UsedSeconds > res.BudgetSeconds*1.1 {
		t.Errorf("used %vs of a %vs budget", res.UsedSeconds, res.BudgetSeconds)
	}
	if len(res.Trials) < 3 || !reflect.DeepEqual(seen, res.Trials) {
		t.Fatalf("trace %v, progress saw %v: want the same >= 3 trials", res.Trials, seen)
	}
	// The chosen setting is the best of the highest rung reached, at the
	// full iteration count, with Base's solver and seed.
	top := 0
	for _, tr := range res.Trials {
		top = max(top, tr.Rung)
	}
	for _, tr := range res.Trials {
		if tr.Rung == top && !tr.Aborted && tr.Score > res.Score {
			t.Errorf("trial %+v beats the chosen score %v", tr, res.Score)
		}
	}
	if c := res.Chosen; c.Iterations != 6 || c.Solver != "cg" || c.Seed != 1 || c.Validate() != nil {
		t.Errorf("chosen %+v: want a valid setting with base's 6 iterations, cg, seed 1", c)
	}
	if res.Score <= 0 {
		t.Errorf("chosen validation score %v", res.Score)
	}
	// 80 items: no setting gets more factors than the widest choice
	// below that.
	for _, tr := range res.Trials {
		if tr.Hyper.Factors > 64 {
			t.Errorf("trial %+v: more factors than the 64 the 80 items allow", tr)
		}
	}
}

func TestSearchStartsFromTheWarmSetting(t *testing.T) {
	warm := mf.Hyperparameters{Factors: 32, Regularization: 0.7, RegExponent: 0.5, Alpha: 3, Confidence: mf.ConfidenceLog}
	res, err := Search(context.Background(), tinyData(), Config{Budget: 10 * time.Second, Base: base(), Warm: &warm, Now: tick(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tr := range res.Trials {
		h := tr.Hyper
		if tr.Bracket == 0 && tr.Rung == 0 && h.Factors == 32 && h.Regularization == 0.7 && h.Alpha == 3 && h.Confidence == mf.ConfidenceLog {
			found = true
		}
	}
	if !found {
		t.Errorf("warm setting not tried in the first rung: %+v", res.Trials)
	}
}

// A budget too small for any trial still gives settings: the warm ones.
func TestSearchWithoutTimeFallsBack(t *testing.T) {
	warm := mf.Hyperparameters{Factors: 16, Regularization: 0.3, Alpha: 4}
	res, err := Search(context.Background(), tinyData(), Config{Budget: time.Second, Base: base(), Warm: &warm, Now: tick(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Trials) != 0 || res.Chosen.Factors != 16 || res.Chosen.Iterations != 6 {
		t.Errorf("got %d trials, chosen %+v; want none and the warm setting", len(res.Trials), res.Chosen)
	}
}

func TestSearchErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Search(ctx, tinyData(), Config{Budget: time.Minute, Base: base()}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}
	if _, err := Search(context.Background(), tinyData(), Config{Base: base()}); err == nil {
		t.Error("zero budget accepted")
	}
	if _, err := Search(context.Background(), tinyData(), Config{Budget: time.Minute, Base: base(), Metric: "auc@3"}); err == nil {
		t.Error("unknown metric accepted")
	}
}

// walkData plants an order: every user walks from a random item to its
// successor (a fixed permutation) with probability 0.7, elsewhere at random.
// The next item depends on the latest one, which only the blend's
// transition term sees.
func walkData() *traindata.Data {
	const users, items, length = 300, 60, 8
	rng := rand.New(rand.NewPCG(4, 4))
	succ := rng.Perm(items)
	d := &traindata.Data{Users: users, Items: items, UserIDs: sparsetest.IDs("u", users), ItemIDs: sparsetest.IDs("i", items)}
	for u := range users {
		x := rng.IntN(items)
		for k := range length {
			d.Append(int32(u), int32(x), 1)
			d.Time = append(d.Time, int64(k))
			if rng.Float64() < 0.7 {
				x = succ[x]
			} else {
				x = rng.IntN(items)
			}
		}
	}
	return d
}

// With Blend, each trial is scored by the blend it would serve: never
// below MF alone on the same setting (the grid holds MF alone), far above
// it where order matters, and the chosen setting's weight grid comes back.
func TestRunScoresTrialsByTheBlend(t *testing.T) {
	// Base at 32 factors, so the clock's one second per call lets the
	// first rung try most of the bracket's settings.
	b32 := base()
	b32.Factors = 32
	cfg := Config{Budget: 30 * time.Second, Base: b32, Workers: 2, Seed: 1, Now: tick(time.Second)}
	plain, err := Run(context.Background(), walkData(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Now = tick(time.Second)
	cfg.Blend = &eval.BlendOptions{Seed: 1}
	blended, err := Run(context.Background(), walkData(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Blend != nil || plain.Tuning.Scorer != "als" || blended.Tuning.Scorer != "als+blend" {
		t.Errorf("scorers %q / %q, plain blend grid %v: want als, als+blend and no grid without Blend",
			plain.Tuning.Scorer, blended.Tuning.Scorer, plain.Blend)
	}
	// The first rung's settings do not depend on scores: compare them.
	first := func(r *Result) map[string]float64 {
		m := map[string]float64{}
		for _, tr := range r.Tuning.Trials {
			if tr.Bracket == 0 && tr.Rung == 0 && !tr.Aborted {
				m[fmt.Sprintf("%+v", tr.Hyper)] = tr.Score
			}
		}
		return m
	}
	p, b := first(plain), first(blended)
	t.Logf("first rung: %d settings, %d trials in all", len(p), len(plain.Tuning.Trials))
	if len(p) < 3 {
		t.Fatalf("only %d first-rung trials: %+v", len(p), plain.Tuning.Trials)
	}
	for h, ps := range p {
		bs, ok := b[h]
		if !ok {
			t.Errorf("setting %s scored without the blend only", h)
			continue
		}
		if bs < ps {
			t.Errorf("setting %s: blend score %.4f below MF alone %.4f", h, bs, ps)
		}
	}
	if !(blended.Tuning.Score >= 1.3*plain.Tuning.Score) {
		t.Errorf("chosen validation ndcg@10 with the blend %.4f, want >= 1.3 × MF alone's %.4f on planted order",
			blended.Tuning.Score, plain.Tuning.Score)
	}
	g := blended.Blend
	if g == nil || g.K != 10 || len(g.Trials) == 0 {
		t.Fatalf("chosen setting's grid %+v: want one at K 10", g)
	}
	if best := g.Best(true, true, true); best.NDCG != blended.Tuning.Score || best.Params.Transition == 0 {
		t.Errorf("grid's best %+v, chosen score %v: want the same score, with transitions", best, blended.Tuning.Score)
	}
	if _, err := Run(context.Background(), walkData(), Config{Budget: time.Minute, Base: base(), Metric: "recall@10", Blend: &eval.BlendOptions{}}); err == nil {
		t.Error("blend scoring by recall@10 accepted")
	}
}

// The hand-tuned settings of docs/training.md are among the priors the
// first bracket proposes, as the priors' comment says.
func TestFirstBracketProposesTheHandTunedSettings(t *testing.T) {
	s := &search{cfg: Config{Base: base()}, rng: rand.New(rand.NewPCG(1, 1))}
	got, _ := s.propose(0)
	for name, want := range map[string]mf.Hyperparameters{
		"MovieLens 100K": {Factors: 32, Regularization: 0.05, RegExponent: 1, Alpha: 1},
		"Ta-Feng":        {Factors: 256, Regularization: 10, RegExponent: 0.5, Alpha: 5},
		"DIGINETICA":     {Factors: 64, Regularization: 1, RegExponent: 0, Alpha: 40},
	} {
		if !slices.ContainsFunc(got, func(h mf.Hyperparameters) bool { return sameSetting(h, want) }) {
			t.Errorf("%s's hand-tuned setting %+v not proposed in the first bracket: %+v", name, want, got)
		}
	}
}

// sameSetting compares the searched fields (a proposal carries Base's
// iterations, solver and seed).
func sameSetting(a, b mf.Hyperparameters) bool {
	ca, cb := cmp.Or(a.Confidence, mf.ConfidenceLinear), cmp.Or(b.Confidence, mf.ConfidenceLinear)
	return a.Factors == b.Factors && a.Regularization == b.Regularization && a.RegExponent == b.RegExponent &&
		a.Alpha == b.Alpha && ca == cb
}

func TestFirstBracketProposesTheWidestSetting(t *testing.T) {
	w := widest()
	if w.Factors != slices.Max(factorChoices) {
		t.Fatalf("widest prior %+v: want %d factors", w, slices.Max(factorChoices))
	}
	for _, tc := range []struct {
		name       string
		warm       *mf.Hyperparameters
		wantPinned int
	}{
		{"no warm start", nil, 1},
		{"narrow warm start", &mf.Hyperparameters{Factors: 32, Regularization: 0.7, Alpha: 3}, 2},
		{"warm start is the widest", &w, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &search{cfg: Config{Base: base(), Warm: tc.warm}, rng: rand.New(rand.NewPCG(1, 1))}
			got, pinned := s.propose(0)
			if len(got) == 0 || !sameSetting(got[0], w) || pinned != tc.wantPinned {
				t.Fatalf("first bracket %+v, %d pinned: want the widest prior %+v first, %d pinned", got, pinned, w, tc.wantPinned)
			}
			if tc.warm != nil && !sameSetting(got[pinned-1], *tc.warm) {
				t.Errorf("pinned %+v: want the warm start %+v among them", got[:pinned], *tc.warm)
			}
			later, _ := s.propose(1)
			if slices.ContainsFunc(later, func(h mf.Hyperparameters) bool { return sameSetting(h, w) }) {
				t.Errorf("second bracket proposes the widest prior again: %+v", later)
			}
		})
	}
}

// Under a budget too small for the whole first rung (a clock that ticks
// per call), the widest prior is still trained, first, and the warm start
// next; without the rule the narrow settings went first and extrapolating
// their time ruled the 256 factors out.
func TestFirstRungTrainsTheWidestSetting(t *testing.T) {
	warm := mf.Hyperparameters{Factors: 32, Regularization: 0.7, RegExponent: 0.5, Alpha: 3, Confidence: mf.ConfidenceLog}
	// More items than the widest prior's factors (factors are capped at
	// the item count), few users: cheap at 256 factors.
	g := sparsetest.Generate(sparsetest.Config{Users: 60, Items: 300, Clusters: 4, PerUser: 12, Zipf: 0.8, Noise: 0.1, Seed: 5})
	d := &traindata.Data{Users: g.Users, Items: g.Items, UserIDs: sparsetest.IDs("u", g.Users), ItemIDs: sparsetest.IDs("i", g.Items),
		Triples: g.Triples, Time: g.Time}
	res, err := Search(context.Background(), d, Config{Budget: 12 * time.Second, Base: base(), Warm: &warm, Workers: 2, Now: tick(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	first := 0
	for _, tr := range res.Trials {
		if tr.Bracket == 0 && tr.Rung == 0 {
			first++
		}
	}
	if len(res.Trials) < 2 || first >= bracketSize {
		t.Fatalf("trials %+v: want >= 2, and fewer than the %d settings of the first rung (a budget that does not fit them all)", res.Trials, bracketSize)
	}
	w := widest()
	if tr := res.Trials[0]; !sameSetting(tr.Hyper, w) || tr.Bracket != 0 || tr.Rung != 0 || tr.Aborted {
		t.Errorf("first trial %+v: want the widest prior %+v trained in bracket 0, rung 0", tr, w)
	}
	if tr := res.Trials[1]; !sameSetting(tr.Hyper, warm) {
		t.Errorf("second trial %+v: want the warm start %+v", tr, warm)
	}
}

// Shorter budgets validate on fewer users, and the widest prior's first
// trial may take a quarter of the budget, so a short search under load
// does not spend half of itself on one setting.
func TestBudgetScalesTheValidationAndTheWidestTrial(t *testing.T) {
	for _, tc := range []struct {
		budget    time.Duration
		wantCases int
		wantLimit time.Duration
	}{
		{30 * time.Second, 1000, 7500 * time.Millisecond},
		{2 * time.Minute, 1000, 30 * time.Second},
		{6 * time.Minute, 3000, 90 * time.Second},
		{10 * time.Minute, 5000, 150 * time.Second},
		{time.Hour, 5000, 15 * time.Minute},
	} {
		t.Run(tc.budget.String(), func(t *testing.T) {
			if got := maxCasesFor(tc.budget); got != tc.wantCases {
				t.Errorf("validation users: got %d, want %d", got, tc.wantCases)
			}
			if got := widestLimit(tc.budget); got != tc.wantLimit {
				t.Errorf("widest trial's limit: got %v, want %v", got, tc.wantLimit)
			}
		})
	}
	// A search without MaxCases validates on maxCasesFor(Budget) users.
	g := sparsetest.Generate(sparsetest.Config{Users: 1500, Items: 40, Clusters: 4, PerUser: 6, Zipf: 0.8, Noise: 0.1, Seed: 7})
	d := &traindata.Data{Users: g.Users, Items: g.Items, UserIDs: sparsetest.IDs("u", g.Users), ItemIDs: sparsetest.IDs("i", g.Items),
		Triples: g.Triples, Time: g.Time}
	for _, tc := range []struct {
		budget time.Duration
		want   int
	}{{time.Minute, 1000}, {10 * time.Minute, 1500}} {
		h := base()
		h.Iterations = 3
		res, err := Search(context.Background(), d, Config{Budget: tc.budget, Base: h, Workers: 2, Now: tick(tc.budget / 20)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Trials) == 0 {
			t.Fatalf("budget %v: no trial ran", tc.budget)
		}
		for _, tr := range res.Trials {
			if tr.Cases != tc.want {
				t.Errorf("budget %v: trial validated on %d users, want %d", tc.budget, tr.Cases, tc.want)
				break
			}
		}
	}
}

// A factor count whose trial was cut counts as twice as slow as the time
// it ran: another trial of it starts only with that much time left (plus
// the fifth kept as margin).
func TestACutTrialIsNotRetriedWithoutTimeForIt(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		left  time.Duration
		iters int
		want  bool
	}{
		{"three minutes left", 3 * time.Minute, 3, false},         // needs 180 s / 0.8
		{"four minutes left", 4 * time.Minute, 3, true},           // 180 s <= 192 s
		{"longer trial, four minutes", 4 * time.Minute, 7, false}, // 420 s
		{"ten minutes left, longer trial", 10 * time.Minute, 7, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &search{cfg: Config{Now: func() time.Time { return start }}, deadline: start.Add(tc.left),
				cost: map[int]costModel{256: cutCost(90, 3)}}
			if got := s.fits(mf.Hyperparameters{Factors: 256, Iterations: tc.iters}); got != tc.want {
				t.Errorf("fits with %v left, %d iterations, after a 3-iteration trial cut at 90 s: got %v, want %v", tc.left, tc.iters, got, tc.want)
			}
		})
	}
}
