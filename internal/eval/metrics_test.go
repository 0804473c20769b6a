package eval

import (
	"math"
	"slices"
	"testing"
)

// The expected values are worked out by hand:
// 1/log2(3) = 0.630930, 1/log2(4) = 0.5, 1/log2(6) = 0.386853.
func TestScoreListHandComputed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ranked []int32
		test   []int32
		k      int
		want   listMetrics
	}{
		{
			// Hit at rank 2 of 3; |test| = 3.
			// DCG = 0.630930, IDCG = 1 + 0.630930 + 0.5 = 2.130930.
			// AP = (1/2) / 3.
			name: "one hit in top 3", ranked: []int32{5, 2, 9, 1, 7}, test: []int32{2, 7, 8}, k: 3,
			want: listMetrics{ndcg: 0.296082, recall: 1.0 / 3, recallCapped: 1.0 / 3, hr: 1, ap: 0.5 / 3},
		},
		{
			// Hits at ranks 2 and 5. DCG = 0.630930 + 0.386853 = 1.017783,
			// IDCG = 2.130930. AP = (1/2 + 2/5) / 3 = 0.3.
			name: "two hits in top 5", ranked: []int32{5, 2, 9, 1, 7}, test: []int32{2, 7, 8}, k: 5,
			want: listMetrics{ndcg: 0.477624, recall: 2.0 / 3, recallCapped: 2.0 / 3, hr: 1, ap: 0.3},
		},
		{
			// |test| = 5 > K = 2: the ideal and the capped recall's
			// denominator are min(K, |test|) = 2, recall's is |test| = 5.
			// Hit at rank 1: DCG = 1, IDCG = 1.630930.
			name: "more test items than K", ranked: []int32{4, 6, 1}, test: []int32{0, 1, 2, 3, 4}, k: 2,
			want: listMetrics{ndcg: 0.613147, recall: 0.2, recallCapped: 0.5, hr: 1, ap: 0.5},
		},
		{
			name: "perfect list", ranked: []int32{3, 1}, test: []int32{1, 3}, k: 2,
			want: listMetrics{ndcg: 1, recall: 1, recallCapped: 1, hr: 1, ap: 1},
		},
		{
			name: "no hit", ranked: []int32{1, 2, 3}, test: []int32{0}, k: 3,
			want: listMetrics{},
		},
		{
			// A list shorter than K (few candidates) counts what is there.
			name: "short list", ranked: []int32{7}, test: []int32{7, 8}, k: 10,
			want: listMetrics{ndcg: 0.613147, recall: 0.5, recallCapped: 0.5, hr: 1, ap: 0.5},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := scoreList(tc.ranked, tc.test, tc.k)
			for _, c := range []struct {
				metric    string
				got, want float64
			}{
				{"ndcg", got.ndcg, tc.want.ndcg},
				{"recall", got.recall, tc.want.recall},
				{"recall_capped", got.recallCapped, tc.want.recallCapped},
				{"hr", got.hr, tc.want.hr},
				{"map", got.ap, tc.want.ap},
			} {
				if math.Abs(c.got-c.want) > 1e-6 {
					t.Errorf("%s = %.6f, want %.6f", c.metric, c.got, c.want)
				}
			}
		})
	}
}

// Ties are broken against the test item; known and NaN test items are
// misses. Ranks are 0-based.
func TestTestRankerTies(t *testing.T) {
	nan := float32(math.NaN())
	for _, tc := range []struct {
		name  string
		row   []float32
		test  []int32
		known []int32
		want  []int
	}{
		{
			// Item 2 ties with items 0 and 4 at 5: both rank above it.
			name: "tie with non-test items", row: []float32{5, 9, 5, 1, 5}, test: []int32{2}, want: []int{3},
		},
		{
			// A sparse scorer: everything 0. The test item ranks last of
			// the five, not first.
			name: "all zero", row: []float32{0, 0, 0, 0, 0}, test: []int32{1}, want: []int{4},
		},
		{
			// Items 1 and 3 tie at 2 with item 0: item 0 first, then the
			// test items in item order (ranks 2 and 3).
			name: "tied test items", row: []float32{2, 2, 7, 2, 1}, test: []int32{1, 3}, want: []int{2, 3},
		},
		{
			// NaN items (known) never rank; test item 4 is known: a miss.
			name: "known and NaN", row: []float32{nan, 3, nan, 3, 8}, test: []int32{3, 4}, known: []int32{0, 2, 4},
			want: []int{2},
		},
		{
			name: "NaN test item", row: []float32{1, nan, 2}, test: []int32{1}, want: []int{},
		},
		{
			name: "strict order", row: []float32{0.5, 0.4, 0.3, 0.2}, test: []int32{0, 2}, want: []int{0, 2},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r testRanker
			got := r.rank(tc.row, tc.test, tc.known)
			if !slices.Equal(got, tc.want) {
				t.Errorf("ranks %v, want %v", got, tc.want)
			}
		})
	}
}

// metricsFromRanks with a known test item: it stays in |test|.
func TestMetricsKnownTestItemIsAMiss(t *testing.T) {
	// Test {a, b}, a known (cannot be ranked), b at rank 0. @10: DCG = 1,
	// IDCG = 1 + 0.630930; recall 1/2; hr 1; map 1/2.
	got := metricsFromRanks([]int{0}, 2, 10)
	want := listMetrics{ndcg: 1 / 1.630930, recall: 0.5, recallCapped: 0.5, hr: 1, ap: 0.5}
	if math.Abs(got.ndcg-want.ndcg) > 1e-6 || got.recall != want.recall || got.recallCapped != want.recallCapped || got.hr != want.hr || got.ap != want.ap {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseKey(t *testing.T) {
	for _, tc := range []struct {
		key     string
		name    string
		k       int
		wantErr bool
	}{
		{"ndcg@10", "ndcg", 10, false},
		{"coverage@5", "coverage", 5, false},
		{"recall_capped@20", "recall_capped", 20, false},
		{"ndcg", "", 0, true},
		{"ndcg@0", "", 0, true},
		{"auc@10", "", 0, true},
		{"recall@x", "", 0, true},
	} {
		name, k, err := ParseKey(tc.key)
		if (err != nil) != tc.wantErr || name != tc.name || k != tc.k {
			t.Errorf("ParseKey(%q) = %q, %d, %v; want %q, %d, error %v", tc.key, name, k, err, tc.name, tc.k, tc.wantErr)
		}
	}
}
