package eval

import (
	"context"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/recsys-dev/recsys/internal/sparse"
	"github.com/recsys-dev/recsys/internal/traindata"
)

// fixedScores gives case k the scores scores[k mod len(scores)].
type fixedScores struct {
	scores [][]float32
	err    error
}

func (f *fixedScores) Name() string { return "fixed" }

func (f *fixedScores) Scores(cases []traindata.Case, out []float32) error {
	if f.err != nil {
		return f.err
	}
	n := len(f.scores[0])
	for c, cs := range cases {
		copy(out[c*n:(c+1)*n], f.scores[int(cs.User)%len(f.scores)])
	}
	return nil
}

// handSplit has 6 items and two cases whose metrics are worked out in
// TestEvaluateHandComputed.
func handSplit(t *testing.T) *traindata.Split {
	t.Helper()
	m, err := sparse.FromTriples(2, 6, &sparse.Triples{Row: []int32{0, 1}, Col: []int32{0, 5}, Val: []float32{1, 1}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &traindata.Split{Name: "hand", Matrix: m, Cases: []traindata.Case{
		{User: 0, Known: []int32{0}, KnownWeights: []float32{1}, Test: []int32{3}},
		{User: 1, Known: []int32{5}, KnownWeights: []float32{1}, Test: []int32{0, 4}},
	}}
}

func TestEvaluateHandComputed(t *testing.T) {
	s := handSplit(t)
	rec := &fixedScores{scores: [][]float32{
		{9, 8, 7, 6, 5, 4}, // case 0: item 0 known → ranking 1 2 3 4 5
		{1, 2, 3, 4, 5, 6}, // case 1: item 5 known → ranking 4 3 2 1 0
	}}
	// Case 0, test {3}: @2 no hit; @3 hit at rank 3: ndcg 0.5, recall 1,
	// map 1/3. Case 1, test {0,4}: hit at rank 1 only: ndcg 1/1.630930 =
	// 0.613147 at both cut-offs, recall 0.5, map 0.5.
	// Coverage: @2 {1,2,4,3}, @3 {1,2,3,4} → 4/6 both.
	want := map[string]float64{
		"ndcg@2": 0.613147 / 2, "recall@2": 0.25, "recall_capped@2": 0.25, "hr@2": 0.5, "map@2": 0.25, "coverage@2": 4.0 / 6,
		"ndcg@3": (0.5 + 0.613147) / 2, "recall@3": 0.75, "recall_capped@3": 0.75, "hr@3": 1, "map@3": (1.0/3 + 0.5) / 2, "coverage@3": 4.0 / 6,
	}
	for _, opt := range []Options{
		{Ks: []int{3, 2}, Workers: 1},
		{Ks: []int{2, 3, 3}, Workers: 3, Block: 1},
	} {
		got, err := Evaluate(context.Background(), s, rec, opt)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "fixed" || len(got.Metrics) != len(want) {
			t.Fatalf("got %s with metrics %v, want fixed with %d metrics", got.Name, got.Metrics, len(want))
		}
		for k, w := range want {
			if math.Abs(got.Metrics[k]-w) > 1e-6 {
				t.Errorf("workers %d block %d: %s = %.6f, want %.6f", opt.Workers, opt.Block, k, got.Metrics[k], w)
			}
		}
	}
}

// A recommender that scores every item alike (a sparse scorer with no
// evidence) gains no hits from the tie, and a test item the user already
// has is a miss, not dropped.
func TestEvaluateTiesAgainstTestItem(t *testing.T) {
	s := handSplit(t)
	// Case 1 now also holds its known item 5 in the test set.
	s.Cases[1].Test = []int32{0, 4, 5}
	flat := &fixedScores{scores: [][]float32{{0, 0, 0, 0, 0, 0}}}
	got, err := Evaluate(context.Background(), s, flat, Options{Ks: []int{1, 5}, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Case 0: 5 rankable items, test {3} ranks last (rank 5 of 5): @5 hit,
	// ndcg 1/log2(6) = 0.386853. Case 1: rankable {0..4}; test 0, 4 rank
	// 4th and 5th (ranks 3, 4 0-based): dcg 1/log2(5) + 1/log2(6) =
	// 0.430677 + 0.386853, idcg over min(5, 3) = 3: 1 + 0.630930 + 0.5.
	// Test 5 is known: a miss. recall@5 = 2/3.
	want := map[string]float64{
		"ndcg@1": 0, "hr@1": 0, "recall@1": 0,
		"ndcg@5":   (0.386853 + (0.430677+0.386853)/2.130930) / 2,
		"recall@5": (1 + 2.0/3) / 2, "hr@5": 1,
	}
	for k, w := range want {
		if math.Abs(got.Metrics[k]-w) > 1e-6 {
			t.Errorf("%s = %.6f, want %.6f", k, got.Metrics[k], w)
		}
	}
}

func TestEvaluateErrors(t *testing.T) {
	s := handSplit(t)
	boom := errors.New("boom")
	if _, err := Evaluate(context.Background(), s, &fixedScores{err: boom}, Options{}); !errors.Is(err, boom) {
		t.Errorf("recommender failure: got %v, want it wrapped", err)
	}
	if _, err := Evaluate(context.Background(), s, &fixedScores{scores: [][]float32{{1, 2, 3, 4, 5, 6}}}, Options{Ks: []int{0}}); err == nil {
		t.Error("K = 0 accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Evaluate(ctx, s, &fixedScores{scores: [][]float32{{1, 2, 3, 4, 5, 6}}}, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}
	empty := *s
	empty.Cases = nil
	if _, err := Evaluate(context.Background(), &empty, &fixedScores{scores: [][]float32{{1}}}, Options{}); err == nil {
		t.Error("a split without cases was evaluated")
	}
}

// The evaluation of real recommenders must not depend on workers or block
// size.
func TestEvaluateIndependentOfScheduling(t *testing.T) {
	d := qualityData()
	s, err := traindata.SplitByTime(d, traindata.TimeSplit{LastN: 2})
	if err != nil {
		t.Fatal(err)
	}
	knn, err := NewItemKNN(context.Background(), s.Matrix, KNNOptions{Neighbors: 50})
	if err != nil {
		t.Fatal(err)
	}
	a, err := Evaluate(context.Background(), s, knn, Options{Workers: 1, Block: 64})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Evaluate(context.Background(), s, knn, Options{Workers: 3, Block: 7})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("results differ:\n%v\n%v", a, b)
	}
}

// Rerank sees the deeper ranking and its output is what is scored.
func TestEvaluateRerank(t *testing.T) {
	s := handSplit(t)
	rec := &fixedScores{scores: [][]float32{{9, 8, 7, 6, 5, 4}, {1, 2, 3, 4, 5, 6}}}
	var seen [][]int32
	ch := make(chan []int32, 2)
	// Move the last of the ranked items to the front: case 0 (ranking
	// 1 2 3 4 5) becomes 5 1 2..., case 1 (4 3 2 1 0) becomes 0 4 3...
	res, err := Evaluate(context.Background(), s, rec, Options{Ks: []int{2}, Workers: 1, RerankDepth: 5,
		Rerank: func(dst, ranked []int32) []int32 {
			ch <- append([]int32(nil), ranked...)
			dst = append(dst, ranked[len(ranked)-1])
			return append(dst, ranked[:len(ranked)-1]...)
		}})
	if err != nil {
		t.Fatal(err)
	}
	close(ch)
	for l := range ch {
		seen = append(seen, l)
	}
	if len(seen) != 2 || len(seen[0]) != 5 || len(seen[1]) != 5 {
		t.Fatalf("Rerank saw %v, want two rankings of depth 5", seen)
	}
	// Case 0: 5 1 → no hit. Case 1: 0 4 → both test items: ndcg 1.
	if got := res.Metrics["ndcg@2"]; math.Abs(got-0.5) > 1e-9 {
		t.Errorf("ndcg@2 after rerank = %v, want 0.5", got)
	}
}

// The activity buckets split the test users by history size; their
// user-weighted average is the overall metric. The popularity bias is the
// mean popularity percentile of the listed items.
func TestEvaluateByActivity(t *testing.T) {
	s := handSplit(t)
	// Case 1 gets a history of 5 items (the next bucket).
	s.Cases[1].Known = []int32{1, 2, 5, 3, 4}
	s.Cases[1].KnownWeights = []float32{1, 1, 1, 1, 1}
	s.Cases[1].Test = []int32{0}
	rec := &fixedScores{scores: [][]float32{{9, 8, 7, 6, 5, 4}, {1, 2, 3, 4, 5, 6}}}
	got, err := Evaluate(context.Background(), s, rec, Options{Ks: []int{3}, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Case 0 (1 known): test {3} at rank 3 → ndcg 0.5. Case 1 (5 known):
	// only item 0 is left, the test item → ndcg 1.
	want := []ActivityBucket{{Label: "0-4 items", Users: 1, K: 3, NDCG: 0.5, Recall: 1}, {Label: "5-19 items", Users: 1, K: 3, NDCG: 1, Recall: 1}}
	if len(got.Activity) != len(want) {
		t.Fatalf("buckets %+v, want %+v", got.Activity, want)
	}
	for i, w := range want {
		g := got.Activity[i]
		if g.Label != w.Label || g.Users != w.Users || g.K != w.K || math.Abs(g.NDCG-w.NDCG) > 1e-6 || math.Abs(g.Recall-w.Recall) > 1e-6 {
			t.Errorf("bucket %d: %+v, want %+v", i, g, w)
		}
	}
	if avg := (got.Activity[0].NDCG + got.Activity[1].NDCG) / 2; math.Abs(avg-got.Metrics["ndcg@3"]) > 1e-9 {
		t.Errorf("buckets average %v, overall ndcg@3 %v", avg, got.Metrics["ndcg@3"])
	}
	// Popularity: items 0 and 5 have a user each, the rest none, so their
	// percentile is 4/5 and the others' 0. The lists: case 0 ranks 1 2 3
	// (percentile 0 each), case 1 only item 0 (0.8): mean 0.8/4.
	if p := got.Popularity; p.K != 3 || math.Abs(p.MeanPercentile-0.2) > 1e-9 || p.TopDecileShare != 0 {
		t.Errorf("popularity %+v, want K 3, mean percentile 0.2, top decile share 0", p)
	}
	// Scores of the lists: 8 7 6 (case 0) and 1 (case 1), in 20 bins over
	// [1, 8] of width 0.35.
	h := got.Scores
	wantBins := map[int]int{0: 1, 14: 1, 17: 1, 19: 1}
	if h.K != 3 || h.Min != 1 || h.Max != 8 || len(h.Counts) != 20 {
		t.Fatalf("score histogram %+v, want K 3 over [1, 8] in 20 bins", h)
	}
	for b, n := range h.Counts {
		if n != wantBins[b] {
			t.Errorf("score bin %d: %d, want %d", b, n, wantBins[b])
		}
	}
}
