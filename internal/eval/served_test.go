package eval

import (
	"context"
	"testing"

	"github.com/recsys-dev/recsys/internal/blend"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/traindata"
)

// The served row sits beside ALS, with its recall against the exact scan;
// probing every cell makes it the exact scan: recall 1 and ALS's metrics.
func TestServedRow(t *testing.T) {
	s, err := traindata.SplitByTime(qualityData(), traindata.TimeSplit{Fraction: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	h := mf.Hyperparameters{Factors: 8, Regularization: 0.1, Alpha: 2, Iterations: 10, Seed: 1}
	r, err := Compare(context.Background(), s, h, KNNOptions{}, Options{Served: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Models) != 4 || r.Models[1].Name != ServedName {
		t.Fatalf("rows %v", r.Models)
	}
	recall := r.Models[1].Metrics[RecallVsExact(20)]
	if !(recall > 0 && recall <= 1) {
		t.Errorf("recall_vs_exact@20 = %v", recall)
	}
	model, _, err := TrainALS(context.Background(), s, h, 0)
	if err != nil {
		t.Fatal(err)
	}
	exact, err := ServedRow(context.Background(), s, model, 1<<20, Options{})
	if err != nil {
		t.Fatal(err)
	}
	als, err := Evaluate(context.Background(), s, NewALS(model, nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := exact.Metrics[RecallVsExact(20)]; got != 1 {
		t.Errorf("every cell probed: recall_vs_exact@20 = %v, want 1", got)
	}
	for _, key := range []string{Key(MetricNDCG, 10), Key(MetricNDCG, 20)} {
		if got, want := exact.Metrics[key], als.Metrics[key]; got != want {
			t.Errorf("every cell probed: %s = %v, ALS %v", key, got, want)
		}
	}
}

// The served blend (candidates from the index plus the items the sparse
// terms touch, scored with the full blend) with every cell probed is the
// exact blend: recall 1 and the same metrics; with the default probe its
// recall against the exact blend is measured.
func TestServedBlendRow(t *testing.T) {
	s, err := traindata.SplitByTime(qualityData(), traindata.TimeSplit{Fraction: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	model, _, err := TrainALS(ctx, s, mf.Hyperparameters{Factors: 8, Regularization: 0.1, Alpha: 2, Iterations: 10, Seed: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := blend.DefaultParams()
	p.Neighbor, p.Transition, p.Recency = 0.5, 1, 1
	b, err := BuildBlend(ctx, s, model, p, blend.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	exact := NewBlend("blend", model, b, Sequences(s.Train))
	want, err := Evaluate(ctx, s, exact, Options{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := ServedBlendRow(ctx, s, exact, 1<<20, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if all.Name != ServedBlendName {
		t.Errorf("row named %q", all.Name)
	}
	if got := all.Metrics[RecallVsExact(20)]; got != 1 {
		t.Errorf("every cell probed: recall_vs_exact@20 = %v, want 1", got)
	}
	for _, key := range []string{Key(MetricNDCG, 10), Key(MetricNDCG, 20)} {
		if got, want := all.Metrics[key], want.Metrics[key]; got != want {
			t.Errorf("every cell probed: %s = %v, the exact blend %v", key, got, want)
		}
	}
	one, err := ServedBlendRow(ctx, s, exact, 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if recall := one.Metrics[RecallVsExact(20)]; !(recall > 0 && recall <= 1) {
		t.Errorf("one cell probed: recall_vs_exact@20 = %v", recall)
	}
}
