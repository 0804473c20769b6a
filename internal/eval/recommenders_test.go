package eval

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/recsys-dev/recsys/internal/als"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/sparse"
	"github.com/recsys-dev/recsys/internal/traindata"
)

// tiny is a 4-user × 4-item matrix:
//
//	      i0 i1 i2 i3
//	u0     1  1  .  .
//	u1     1  1  1  .
//	u2     .  2  1  .
//	u3     .  .  .  1
func tiny(t *testing.T) *sparse.Matrix {
	t.Helper()
	tr := &sparse.Triples{}
	for _, e := range [][3]float32{{0, 0, 1}, {0, 1, 1}, {1, 0, 1}, {1, 1, 1}, {1, 2, 1}, {2, 1, 2}, {2, 2, 1}, {3, 3, 1}} {
		tr.Append(int32(e[0]), int32(e[1]), e[2])
	}
	m, err := sparse.FromTriples(4, 4, tr, nil, []string{"i0", "i1", "i2", "i3"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPopularityCountsUsers(t *testing.T) {
	p := NewPopularity(tiny(t))
	out := make([]float32, 8)
	if err := p.Scores([]traindata.Case{{}, {}}, out); err != nil {
		t.Fatal(err)
	}
	if want := []float32{2, 3, 2, 1, 2, 3, 2, 1}; !slices.Equal(out, want) {
		t.Errorf("scores %v, want %v", out, want)
	}
	if err := p.Scores([]traindata.Case{{}, {}}, out[:5]); err == nil {
		t.Error("a short output buffer was accepted")
	}
}

// Column norms: i0 √2, i1 √6, i2 √2, i3 1. Dot products: i0·i1 = 1+1 = 2,
// i0·i2 = 1, i1·i2 = 1+2 = 3, i3 with nothing. Cosines: sim(0,1) = 2/√12 =
// 0.577350, sim(0,2) = 1/2 = 0.5, sim(1,2) = 3/√12 = 0.866025.
func TestItemKNNHandComputed(t *testing.T) {
	knn, err := NewItemKNN(context.Background(), tiny(t), KNNOptions{Neighbors: 2, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		item int32
		nbr  []int32
		sim  []float32
	}{
		{0, []int32{1, 2}, []float32{0.577350, 0.5}},
		{1, []int32{2, 0}, []float32{0.866025, 0.577350}},
		{2, []int32{1, 0}, []float32{0.866025, 0.5}},
		{3, nil, nil},
	} {
		nbr, sim := knn.Neighbors(tc.item)
		if !slices.Equal(nbr, tc.nbr) || len(sim) != len(tc.sim) {
			t.Errorf("item %d: neighbours %v %v, want %v %v", tc.item, nbr, sim, tc.nbr, tc.sim)
			continue
		}
		for k := range sim {
			if math.Abs(float64(sim[k]-tc.sim[k])) > 1e-6 {
				t.Errorf("item %d: sim %v, want %v", tc.item, sim, tc.sim)
			}
		}
	}
	// A user who knows i0 (weight 2) and i2 (weight 1): i1 = 2·0.577350 +
	// 1·0.866025 = 2.020725; i0 = 1·0.5; i2 = 2·0.5 = 1; i3 = 0.
	out := make([]float32, 4)
	if err := knn.Scores([]traindata.Case{{Known: []int32{0, 2}, KnownWeights: []float32{2, 1}}}, out); err != nil {
		t.Fatal(err)
	}
	want := []float32{0.5, 2.020725, 1, 0}
	for i := range want {
		if math.Abs(float64(out[i]-want[i])) > 1e-5 {
			t.Errorf("scores %v, want %v", out, want)
			break
		}
	}
	// With one neighbour, item 0 keeps only item 1.
	knn1, err := NewItemKNN(context.Background(), tiny(t), KNNOptions{Neighbors: 1})
	if err != nil {
		t.Fatal(err)
	}
	if nbr, _ := knn1.Neighbors(0); !slices.Equal(nbr, []int32{1}) {
		t.Errorf("1 neighbour of item 0: %v, want [1]", nbr)
	}
	if _, err := NewItemKNN(context.Background(), tiny(t), KNNOptions{Neighbors: -1}); err == nil {
		t.Error("negative neighbour count accepted")
	}
}

// Scoring with the exact user factors of the training users and scoring
// by fold-in must give the same ranking scores.
func TestALSFoldInMatchesExactUserFactors(t *testing.T) {
	d := qualityData()
	s, err := traindata.SplitByTime(d, traindata.TimeSplit{LastN: 2})
	if err != nil {
		t.Fatal(err)
	}
	model, res, err := TrainALS(context.Background(), s, mf.Hyperparameters{Factors: 8, Regularization: 0.1, Alpha: 2, Iterations: 4, Seed: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	exact, err := als.SolveExact(context.Background(), s.Matrix, res.ItemFactors, res.Hyper, 2)
	if err != nil {
		t.Fatal(err)
	}
	cases := s.Cases[:32]
	n := model.NumItems()
	a, b := make([]float32, len(cases)*n), make([]float32, len(cases)*n)
	if err := NewALS(model, nil).Scores(cases, a); err != nil {
		t.Fatal(err)
	}
	if err := NewALS(model, exact).Scores(cases, b); err != nil {
		t.Fatal(err)
	}
	for k := range a {
		if math.Abs(float64(a[k]-b[k])) > 1e-4*(1+math.Abs(float64(b[k]))) {
			t.Fatalf("score %d: fold-in %v, user factors %v", k, a[k], b[k])
		}
	}
	// The CG user factors of the training run are a different (earlier)
	// solution, so they must give different scores: the option is used.
	if err := NewALS(model, res.UserFactors).Scores(cases, b); err != nil {
		t.Fatal(err)
	}
	if slices.Equal(a, b) {
		t.Error("scores with the training user factors equal the fold-in scores")
	}
}
