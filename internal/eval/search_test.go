package eval

import (
	"context"
	"slices"
	"testing"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/traindata"
)

func TestSearch(t *testing.T) {
	d := qualityData()
	test, err := traindata.SplitByTime(d, traindata.TimeSplit{Fraction: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	// Validation carved from the training events only.
	val, err := traindata.SplitByTime(test.Train, traindata.TimeSplit{Fraction: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	opt := SearchOptions{
		Base:  mf.Hyperparameters{Factors: 8, Regularization: 0.1, Alpha: 2, Iterations: 4, Seed: 1},
		Space: SearchSpace{Factors: []int{2, 8}, Alpha: []float64{0.5, 2}, Regularization: []float64{0.1, 1}},
	}
	var seen int
	opt.Progress = func(tr Trial) {
		seen++
		if tr.N != seen || tr.Of != 8 {
			t.Errorf("progress call %d says trial %d of %d, want %d of 8", seen, tr.N, tr.Of, seen)
		}
	}
	trials, err := Search(context.Background(), val, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(trials) != 8 || seen != 8 {
		t.Fatalf("%d trials, %d progress calls, want 8 (the whole grid)", len(trials), seen)
	}
	for k := 1; k < len(trials); k++ {
		if trials[k].Score > trials[k-1].Score {
			t.Errorf("trials not sorted: %v after %v", trials[k].Score, trials[k-1].Score)
		}
		if trials[k].Score != trials[k].Metrics["ndcg@10"] {
			t.Errorf("score %v is not ndcg@10 %v", trials[k].Score, trials[k].Metrics["ndcg@10"])
		}
	}
	// Two factors cannot describe eight clusters.
	if trials[0].Hyper.Factors != 8 {
		t.Errorf("best trial %+v, want 8 factors", trials[0].Hyper)
	}
	if trials[0].Hyper.Iterations != 4 || trials[0].Hyper.Solver != "cg" {
		t.Errorf("best trial %+v lost the base settings", trials[0].Hyper)
	}

	opt.Trials, opt.Seed, opt.Metric, opt.Progress = 3, 9, "recall@20", nil
	a, err := Search(context.Background(), val, opt)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Search(context.Background(), val, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 3 || !slices.EqualFunc(a, b, func(x, y Trial) bool { return x.Hyper == y.Hyper && x.Score == y.Score }) {
		t.Errorf("seeded random search is not repeatable: %d trials", len(a))
	}
	if a[0].Score != a[0].Metrics["recall@20"] {
		t.Errorf("score %v is not recall@20", a[0].Score)
	}
	opt.Metric = "auc"
	if _, err := Search(context.Background(), val, opt); err == nil {
		t.Error("an unknown metric was accepted")
	}
}
