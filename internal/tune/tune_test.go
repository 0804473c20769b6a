package tune

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/sparse/sparsetest"
)

// tinyData: 150 users, 80 items, 4 planted clusters.
func tinyData() *eval.Data {
	g := sparsetest.Generate(sparsetest.Config{Users: 150, Items: 80, Clusters: 4, PerUser: 10, Zipf: 0.8, Noise: 0.1, Seed: 3})
	return &eval.Data{Users: g.Users, Items: g.Items, UserIDs: sparsetest.IDs("u", g.Users), ItemIDs: sparsetest.IDs("i", g.Items),
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
