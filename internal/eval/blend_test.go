package eval

import (
	"context"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/recsys-dev/recsys/internal/blend"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/sparse"
	"github.com/recsys-dev/recsys/internal/sparse/sparsetest"
	"github.com/recsys-dev/recsys/internal/traindata"
)

// chainData plants an order: each item i has a successor succ[i] (a random
// permutation), and every user's history is a walk that goes to the
// current item's successor with probability follow, elsewhere at random.
// The next item depends on the latest one, which MF (order-blind, and with
// few factors unable to hold a permutation) and item neighbours (symmetric:
// they cannot tell successor from predecessor) can only partly see. With
// shuffle, each user's walk is put in random order: the same co-occurrence,
// no order.
func chainData(users, items, length int, follow float64, shuffle bool, seed uint64) *traindata.Data {
	rng := rand.New(rand.NewPCG(seed, 7))
	succ := rng.Perm(items)
	d := &traindata.Data{Users: users, Items: items, UserIDs: sparsetest.IDs("u", users), ItemIDs: sparsetest.IDs("i", items)}
	walk := make([]int32, length)
	for u := range users {
		x := rng.IntN(items)
		for k := range walk {
			walk[k] = int32(x)
			if rng.Float64() < follow {
				x = succ[x]
			} else {
				x = rng.IntN(items)
			}
		}
		if shuffle {
			rng.Shuffle(length, func(a, b int) { walk[a], walk[b] = walk[b], walk[a] })
		}
		for k, i := range walk {
			d.Append(int32(u), i, 1)
			d.Time = append(d.Time, int64(k))
		}
	}
	return d
}

// ablation runs BlendAblation and the baselines on a leave-last-out split
// of d and returns NDCG@10 by row name.
func ablation(t *testing.T, d *traindata.Data, h mf.Hyperparameters) map[string]float64 {
	t.Helper()
	s, err := traindata.SplitByTime(d, traindata.TimeSplit{LastN: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := Compare(ctx, s, h, KNNOptions{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rows, _, err := BlendAblation(ctx, s, h, BlendOptions{Seed: 1}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.Models = append(r.Models, rows...)
	var sb strings.Builder
	if err := r.WriteTable(&sb); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + sb.String())
	got := map[string]float64{}
	for _, m := range r.Models {
		got[m.Name] = m.Metrics[Key(MetricNDCG, 10)]
	}
	return got
}

var blendHyper = mf.Hyperparameters{Factors: 8, Regularization: 0.1, Alpha: 2, Iterations: 8, Seed: 1}

// The sequential term finds the planted successor; MF and neighbours
// alone do not.
func TestBlendFindsPlantedOrder(t *testing.T) {
	got := ablation(t, chainData(800, 150, 8, 0.6, false, 1), blendHyper)
	const all = "mf+neighbors+transitions"
	if want := 1.25 * max(got["mf+neighbors"], got["itemknn"], got["als"]); !(got[all] >= want) {
		t.Errorf("with transitions NDCG@10 = %.4f, want >= 1.25 × the best of MF+neighbours, item-kNN and ALS = %.4f", got[all], want)
	}
	if !(got["mf+neighbors"] >= 1.1*got["mf"]) {
		t.Errorf("MF+neighbours NDCG@10 = %.4f, want >= 1.1 × MF alone (%.4f)", got["mf+neighbors"], got["mf"])
	}
}

// Where order carries nothing, validation keeps the terms from doing harm.
func TestBlendDoesNoHarmWithoutOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    *traindata.Data
	}{
		{"shuffled walks", chainData(800, 150, 8, 0.6, true, 1)},
		{"clusters", plantedData(sparsetest.Config{Users: 600, Items: 200, Clusters: 6, PerUser: 12, Zipf: 1.0, Noise: 0.15, Seed: 5})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ablation(t, tc.d, blendHyper)
			for _, row := range []string{"mf+neighbors", "mf+neighbors+transitions", "mf+neighbors+transitions+recency"} {
				if want := 0.95 * got["mf"]; !(got[row] >= want) {
					t.Errorf("%s NDCG@10 = %.4f, want >= 0.95 × MF alone = %.4f", row, got[row], want)
				}
			}
		})
	}
}

// FitBlend reads only the training events: poisoning the test cases
// changes nothing.
func TestFitBlendNeverReadsTheTestPart(t *testing.T) {
	s, err := traindata.SplitByTime(chainData(200, 60, 6, 0.6, false, 2), traindata.TimeSplit{LastN: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	opt := BlendOptions{Seed: 1, Workers: 2}
	a, err := FitBlend(ctx, s, blendHyper, opt)
	if err != nil {
		t.Fatal(err)
	}
	poisoned := *s
	poisoned.Cases = []traindata.Case{{User: 0, Test: []int32{1 << 30}}}
	poisoned.Matrix = &sparse.Matrix{}
	b, err := FitBlend(ctx, &poisoned, blendHyper, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Error("poisoning the test part changed the validation search")
	}
}

// Pooled grids weigh each fold by its users; grids that do not describe
// the same points are refused.
func TestPoolBlendSearches(t *testing.T) {
	p := func(wn, wt float32) blend.Params {
		q := blend.DefaultParams()
		q.Neighbor, q.Transition = wn, wt
		return q
	}
	a := &BlendSearch{K: 20, Users: 100, Trials: []BlendTrial{{p(0, 0), 0.10, 0.20}, {p(1, 0), 0.30, 0.40}}}
	b := &BlendSearch{K: 20, Users: 300, Trials: []BlendTrial{{p(0, 0), 0.30, 0.40}, {p(1, 0), 0.10, 0.20}}}
	t.Run("weighted by users", func(t *testing.T) {
		got, err := PoolBlendSearches(a, b)
		if err != nil {
			t.Fatal(err)
		}
		// (0.10·100 + 0.30·300) / 400 = 0.25; (0.30·100 + 0.10·300) / 400 = 0.15.
		want := &BlendSearch{K: 20, Users: 400, Trials: []BlendTrial{{p(0, 0), 0.25, 0.35}, {p(1, 0), 0.15, 0.25}}}
		if got.K != want.K || got.Users != want.Users || len(got.Trials) != 2 {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		for i := range want.Trials {
			g, w := got.Trials[i], want.Trials[i]
			if g.Params != w.Params || math.Abs(g.NDCG-w.NDCG) > 1e-12 || math.Abs(g.HR-w.HR) > 1e-12 {
				t.Errorf("point %d: got %+v, want %+v", i, g, w)
			}
		}
		if best := got.Best(true, true, true); best.Params != p(0, 0) {
			t.Errorf("pooled best %+v: want the point the larger fold prefers", best.Params)
		}
	})
	for _, tc := range []struct {
		name  string
		grids []*BlendSearch
		want  string
	}{
		{"none", nil, "no grid"},
		{"nil grid", []*BlendSearch{a, nil}, "grid 1 is nil"},
		{"other K", []*BlendSearch{a, {K: 10, Users: 1, Trials: b.Trials}}, "K 10"},
		{"other size", []*BlendSearch{a, {K: 20, Users: 1, Trials: b.Trials[:1]}}, "1 points"},
		{"other points", []*BlendSearch{a, {K: 20, Users: 1, Trials: []BlendTrial{b.Trials[1], b.Trials[0]}}}, "point 0 of grid 1"},
		{"no users", []*BlendSearch{{K: 20, Trials: a.Trials}}, "no validation users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := PoolBlendSearches(tc.grids...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// WeightRows scores each grid's best weights: a grid whose best point is
// the ablation's full row gives that row's metrics.
func TestWeightRowsMatchTheAblation(t *testing.T) {
	s, err := traindata.LeaveLastOut(chainData(200, 60, 6, 0.6, false, 4))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	opt := BlendOptions{Seed: 1, Workers: 2}
	eopt := Options{Ks: []int{10}, Workers: 2}
	rows, search, err := BlendAblation(ctx, s, blendHyper, opt, eopt)
	if err != nil {
		t.Fatal(err)
	}
	model, _, err := TrainALS(ctx, s, blendHyper, 2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := WeightRows(ctx, s, model, []string{"fold"}, []*BlendSearch{search}, opt, eopt)
	if err != nil {
		t.Fatal(err)
	}
	full := rows[len(rows)-1]
	if len(got) != 1 || got[0].Name != "fold" || got[0].Metrics["ndcg@10"] != full.Metrics["ndcg@10"] || full.Metrics["ndcg@10"] == 0 {
		t.Errorf("got %+v, want one row \"fold\" with the full ablation row's non-zero ndcg@10 %v", got, full.Metrics["ndcg@10"])
	}
	if _, err := WeightRows(ctx, s, model, []string{"a", "b"}, []*BlendSearch{search}, opt, eopt); err == nil {
		t.Error("two names for one grid: want an error")
	}
}
