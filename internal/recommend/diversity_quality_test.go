package recommend

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/synth"
	"github.com/recsys-dev/recsys/internal/traindata"
)

// TestDiversityQualityCost measures what the per-category cap costs in
// ranking quality: ALS is trained on a generated shop (30 categories) with
// the eval package's time holdout, every test user is folded in as the
// server does, and the same CapPerCategory the engine applies is run over
// each ranked list before NDCG@10 is computed. The table it logs (run with
// -v) is in benchmarks/README.md ("Diversity cost"). It checks that the cap holds in every list, that
// tighter caps give more categories per list, and that even the tightest
// cap keeps ALS above the popularity baseline by a margin.
func TestDiversityQualityCost(t *testing.T) {
	ctx := context.Background()
	cfg := synth.Config{Users: 3000, Items: 1500, Events: 90_000, Categories: 30, Seed: 7}
	shop, err := synth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	full := shop.Config()
	col := traindata.NewCollector(event.DefaultWeighting(), full.End)
	if err := shop.Generate(ctx, col.Add); err != nil {
		t.Fatal(err)
	}
	d := col.Data()
	split, err := traindata.SplitByTime(d, traindata.TimeSplit{Fraction: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	model, _, err := eval.TrainALS(ctx, split, mf.Hyperparameters{Factors: 16, Regularization: 0.1, Alpha: 2, Iterations: 10, Seed: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	catOf := map[string]int32{}
	names := map[string]int32{}
	for _, it := range shop.Items() {
		if _, ok := names[it.Category]; !ok {
			names[it.Category] = int32(len(names))
		}
		catOf[it.ID] = names[it.Category]
	}
	category := func(i int32) int32 { return catOf[d.ItemIDs[i]] }

	const k = 10
	type row struct {
		name                string
		ndcg, recall, cover float64
		categories          float64
	}
	var rows []row
	pop, err := eval.Evaluate(ctx, split, eval.NewPopularity(split.Matrix), eval.Options{Ks: []int{k}})
	if err != nil {
		t.Fatal(err)
	}
	rows = append(rows, row{name: "popularity", ndcg: pop.Metrics["ndcg@10"], recall: pop.Metrics["recall@10"], cover: pop.Metrics["coverage@10"]})
	als := eval.NewALS(model, nil)
	for _, maxPer := range []int{0, 5, 3, 2, 1} {
		var lists, distinct, violations atomic.Int64
		rerank := func(dst, ranked []int32) []int32 {
			dst = CapPerCategory(dst, ranked, k, maxPer, category)
			seen := map[int32]int{}
			for _, i := range dst {
				seen[category(i)]++
			}
			for _, n := range seen {
				if maxPer > 0 && n > maxPer {
					violations.Add(1)
				}
			}
			lists.Add(1)
			distinct.Add(int64(len(seen)))
			return dst
		}
		res, err := eval.Evaluate(ctx, split, als, eval.Options{Ks: []int{k}, Rerank: rerank, RerankDepth: 200})
		if err != nil {
			t.Fatal(err)
		}
		if v := violations.Load(); v != 0 {
			t.Errorf("cap %d: %d lists break it", maxPer, v)
		}
		name := "als, no cap"
		if maxPer > 0 {
			name = fmt.Sprintf("als, cap %d per category", maxPer)
		}
		rows = append(rows, row{name: name, ndcg: res.Metrics["ndcg@10"], recall: res.Metrics["recall@10"],
			cover: res.Metrics["coverage@10"], categories: float64(distinct.Load()) / float64(lists.Load())})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d test users, %d items, %d categories, time holdout 20%%\n", len(split.Cases), d.Items, len(names))
	fmt.Fprintf(&b, "%-26s %9s %9s %11s %14s %10s\n", "", "ndcg@10", "recall@10", "coverage@10", "categories@10", "ndcg cost")
	base := rows[1].ndcg
	for _, r := range rows {
		cost, cats := "", "-"
		if r.name != "popularity" {
			cost, cats = fmt.Sprintf("%+.1f%%", 100*(r.ndcg-base)/base), fmt.Sprintf("%.2f", r.categories)
		}
		fmt.Fprintf(&b, "%-26s %9.4f %9.4f %11.4f %14s %10s\n", r.name, r.ndcg, r.recall, r.cover, cats, cost)
	}
	t.Log("\n" + b.String())

	for i := 2; i < len(rows); i++ {
		if rows[i].categories < rows[i-1].categories {
			t.Errorf("%s: %.2f categories per list, fewer than %s (%.2f)", rows[i].name, rows[i].categories, rows[i-1].name, rows[i-1].categories)
		}
	}
	// With seed 7 the tightest cap (one item per category) keeps 1.40×
	// popularity's NDCG@10; ask for 1.2×.
	if last := rows[len(rows)-1]; !(last.ndcg >= 1.2*rows[0].ndcg) {
		t.Errorf("%s: ndcg@10 %.4f, want >= 1.2 × popularity (%.4f)", last.name, last.ndcg, rows[0].ndcg)
	}
}
