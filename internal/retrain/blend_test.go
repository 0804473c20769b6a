package retrain_test

import (
	"context"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/blend"
	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/retrain"
)

// walks are users' item sequences in which each item is usually followed
// by its successor (a fixed random permutation): order an MF model cannot
// see.
func walks(users, items, length int, seed uint64) []event.Event {
	rng := rand.New(rand.NewPCG(seed, 9))
	succ := rng.Perm(items)
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	var evs []event.Event
	for u := range users {
		x := rng.IntN(items)
		for k := range length {
			evs = append(evs, event.Event{UserID: "u" + strconv.Itoa(u), ItemID: "i" + strconv.Itoa(x), Type: event.View,
				Time: start.Add(time.Duration(u)*time.Hour + time.Duration(k)*time.Minute)})
			if rng.Float64() < 0.7 {
				x = succ[x]
			} else {
				x = rng.IntN(items)
			}
		}
	}
	return evs
}

// With Blend, the job reports MF with the blend next to MF alone and, when
// the blend wins on the gate's metric (as on ordered walks), publishes the
// model with its blend sections, which a server reads back.
func TestRunPublishesTheBlendWhenItWins(t *testing.T) {
	evs := walks(400, 80, 8, 1)
	pub := &recordingPublisher{}
	hyper := good
	hyper.Factors = 8
	out, err := retrain.Run(context.Background(), retrain.Config{Hyper: hyper, Blend: true, AsOf: evs[len(evs)-1].Time},
		sliceSource(evs), nil, pub)
	if err != nil {
		t.Fatal(err)
	}
	als, _ := out.Report.Model("als")
	withBlend, ok := out.Report.Model("als+blend")
	if !ok {
		t.Fatalf("the report has no als+blend row: %+v", out.Report.Models)
	}
	if got, want := withBlend.Metrics["ndcg@10"], 1.2*als.Metrics["ndcg@10"]; !(got >= want) {
		t.Fatalf("als+blend NDCG@10 %.4f, want >= 1.2 × MF alone = %.4f", got, want)
	}
	if len(pub.published) != 1 {
		t.Fatalf("%d models published, want 1", len(pub.published))
	}
	b, err := blend.FromModel(pub.published[0])
	if err != nil {
		t.Fatalf("the published model's blend: %v", err)
	}
	if p := b.Params(); p.Transition == 0 {
		t.Errorf("published blend %+v has no transition weight on ordered walks", p)
	}
	if got := pub.published[0].Info().Metrics["ndcg@10"]; got != withBlend.Metrics["ndcg@10"] {
		t.Errorf("the model's recorded NDCG@10 %.4f, want the blend's %.4f", got, withBlend.Metrics["ndcg@10"])
	}
}

// A tuned job with the blend scores its search by the blend it would
// serve (the record says so) and publishes the blend on ordered walks.
func TestTunedRunScoresTheSearchByTheBlend(t *testing.T) {
	evs := walks(400, 80, 8, 2)
	pub := &recordingPublisher{}
	hyper := good
	hyper.Factors = 8
	out, err := retrain.Run(context.Background(), retrain.Config{Hyper: hyper, Blend: true, AsOf: evs[len(evs)-1].Time,
		TuneBudget: 30 * time.Second, TuneClock: tick(time.Second)}, sliceSource(evs), nil, pub)
	if err != nil {
		t.Fatal(err)
	}
	if len(pub.published) != 1 {
		t.Fatalf("%d models published, want 1", len(pub.published))
	}
	tun := pub.published[0].Info().Tuning
	if tun == nil || len(tun.Trials) == 0 || tun.Scorer != "als+blend" || tun.Candidate != "als+blend" {
		t.Fatalf("tuning record %+v: want trials scored by and a winner of als+blend", tun)
	}
	withBlend, _ := out.Report.Model("als+blend")
	als, _ := out.Report.Model("als")
	if !(withBlend.Metrics["ndcg@10"] > als.Metrics["ndcg@10"]) {
		t.Errorf("als+blend NDCG@10 %.4f, MF alone %.4f", withBlend.Metrics["ndcg@10"], als.Metrics["ndcg@10"])
	}
	if b, err := blend.FromModel(pub.published[0]); err != nil || b.Params().Transition == 0 {
		t.Errorf("published blend %v (%v): want a transition weight on ordered walks", b, err)
	}
}

// Where MF is weak (one factor, one iteration), the pure item-neighbour
// candidate beats it, and the gate publishes it rather than refusing: a
// model whose blend is the neighbour term alone, which a server reads back.
func TestGatePublishesItemNeighborsWhereTheyWin(t *testing.T) {
	evs := shop(t)
	pub := &recordingPublisher{}
	weak := mf.Hyperparameters{Factors: 1, Iterations: 1, Regularization: 0.05, Alpha: 10, Seed: 1}
	out, err := retrain.Run(context.Background(), retrain.Config{Hyper: weak, AsOf: evs[len(evs)-1].Time,
		Candidates: []retrain.Candidate{retrain.ALSCandidate{}, retrain.NeighborCandidate{}}}, sliceSource(evs), nil, pub)
	if err != nil {
		t.Fatalf("%v (gate: %+v)", err, out.Gate)
	}
	nb, ok := out.Report.Model("itemneighbors")
	als, _ := out.Report.Model("als")
	knn, _ := out.Report.Model("itemknn")
	if !ok || !(nb.Metrics["ndcg@10"] > als.Metrics["ndcg@10"]) || !(nb.Metrics["ndcg@10"] >= knn.Metrics["ndcg@10"]) {
		t.Fatalf("itemneighbors %v, als %v, item-kNN %v: want item neighbours above both", nb.Metrics["ndcg@10"], als.Metrics["ndcg@10"], knn.Metrics["ndcg@10"])
	}
	if out.Gate.Candidate != "itemneighbors" || len(pub.published) != 1 {
		t.Fatalf("gate chose %q, %d published: want itemneighbors published", out.Gate.Candidate, len(pub.published))
	}
	b, err := blend.FromModel(pub.published[0])
	if err != nil || b.Params() != blend.NeighborsOnly() {
		t.Errorf("published blend %+v (%v), want %+v", b, err, blend.NeighborsOnly())
	}
}

// The ablation of the job's evaluation describes what it publishes: over
// the job's MF model (the settings its search chose) with the grid its
// blend weights came from, the full row is the job's als+blend row.
func TestJobAblationDescribesThePublishedBlend(t *testing.T) {
	evs := walks(300, 80, 8, 3)
	ctx := context.Background()
	hyper := good
	hyper.Factors = 8
	cfg := retrain.EvalConfig{Hyper: hyper, AsOf: evs[len(evs)-1].Time, Ks: []int{10}, Job: true,
		TuneBudget: 20 * time.Second, TuneClock: tick(time.Second), Candidates: []retrain.Candidate{&retrain.BlendCandidate{}}}
	s, err := retrain.MakeSplit(ctx, cfg, sliceSource(evs))
	if err != nil {
		t.Fatal(err)
	}
	job, err := retrain.EvaluateJob(ctx, cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	if job.Tuning == nil || job.Blend == nil || job.MF == nil {
		t.Fatalf("job %+v: want its search, its blend grid and its MF model", job)
	}
	if job.Tuning.Metric != "ndcg@20" || job.Blend.K != 20 {
		t.Errorf("search metric %q, blend grid at K %d: want ndcg@20 (at 10 the weights follow noise)", job.Tuning.Metric, job.Blend.K)
	}
	if got, want := job.MF.Info().Hyper, job.Tuning.Chosen; got.Factors != want.Factors || got.Regularization != want.Regularization ||
		got.Alpha != want.Alpha || got.RegExponent != want.RegExponent {
		t.Errorf("job's MF settings %+v, want the chosen %+v", got, want)
	}
	// The published weights pool the search's grid (second-to-last
	// training events) with a grid on the job's holdout (the last ones).
	if len(job.Folds) != 2 {
		t.Fatalf("%d validation folds, want 2 (the search's and the holdout's)", len(job.Folds))
	}
	if a, b := job.Folds[0].Users, job.Folds[1].Users; a == 0 || b == 0 || job.Blend.Users != a+b {
		t.Errorf("pooled grid on %d users, folds on %d and %d: want their sum, both non-zero", job.Blend.Users, a, b)
	}
	pooled, err := eval.PoolBlendSearches(job.Folds...)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pooled, job.Blend) {
		t.Error("the job's blend grid is not its folds pooled")
	}
	rows, err := eval.AblationRows(ctx, s, job.MF, job.Blend, eval.BlendOptions{}, eval.Options{Ks: []int{10}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rows {
		names = append(names, r.Name)
	}
	if want := []string{"itemneighbors", "mf", "mf+neighbors", "mf+neighbors+transitions", "mf+neighbors+transitions+recency"}; !slices.Equal(names, want) {
		t.Fatalf("rows %v, want %v", names, want)
	}
	served, _ := job.Report.Model("als+blend")
	if got, want := rows[len(rows)-1].Metrics["ndcg@10"], served.Metrics["ndcg@10"]; got != want || want == 0 {
		t.Errorf("full ablation row NDCG@10 %v, the job's als+blend %v: want the same non-zero score", got, want)
	}
}
