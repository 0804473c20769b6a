package eval

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The metric names; a key in ModelResult.Metrics is name@K, e.g. "ndcg@10".
const (
	MetricNDCG = "ndcg"
	// MetricRecall is the literature's Recall@K: hits / |test|.
	MetricRecall = "recall"
	// MetricRecallCapped is hits / min(K, |test|) (Liang et al. 2018), which
	// reaches 1 when the top K are all test items; it was "recall" before.
	MetricRecallCapped = "recall_capped"
	MetricHR           = "hr"
	MetricMAP          = "map"
	MetricCoverage     = "coverage"
)

// metricNames lists the metrics in the column order of tables.
func metricNames() []string {
	return []string{MetricNDCG, MetricRecall, MetricRecallCapped, MetricHR, MetricMAP, MetricCoverage}
}

// Key is the metric key for name at cut-off k ("ndcg@10").
func Key(name string, k int) string { return name + "@" + strconv.Itoa(k) }

// ParseKey splits a metric key into name and cut-off, rejecting unknown names.
func ParseKey(key string) (string, int, error) {
	name, ks, ok := strings.Cut(key, "@")
	k, err := strconv.Atoi(ks)
	if !ok || err != nil || k < 1 || !slices.Contains(metricNames(), name) {
		return "", 0, fmt.Errorf("metric %q: want name@K with name one of %v and K >= 1", key, metricNames())
	}
	return name, k, nil
}

// listMetrics are the per-user metrics of one ranked list at one cut-off.
type listMetrics struct {
	ndcg, recall, recallCapped, hr, ap float64
}

// metricsFromRanks computes the per-user metrics at cut-off k from the
// 0-based ranks of the test items that can be hit (ascending, distinct);
// nTest is the number of test items, including those that cannot be hit.
func metricsFromRanks(ranks []int, nTest, k int) listMetrics {
	var m listMetrics
	n := min(k, nTest)
	var dcg, idcg, precSum float64
	hits := 0
	for _, r := range ranks {
		if r >= k {
			break
		}
		hits++
		dcg += 1 / math.Log2(float64(r)+2)
		precSum += float64(hits) / float64(r+1)
	}
	for r := range n {
		idcg += 1 / math.Log2(float64(r)+2)
	}
	if hits > 0 {
		m.hr = 1
	}
	m.recall = float64(hits) / float64(nTest)
	m.recallCapped = float64(hits) / float64(n)
	m.ndcg = dcg / idcg
	m.ap = precSum / float64(n)
	return m
}

// scoreList computes the per-user metrics of ranked (best first; only the
// first k are looked at) against test (sorted, distinct, non-empty).
func scoreList(ranked []int32, test []int32, k int) listMetrics {
	var ranks []int
	for r, item := range ranked[:min(k, len(ranked))] {
		if _, ok := slices.BinarySearch(test, item); ok {
			ranks = append(ranks, r)
		}
	}
	return metricsFromRanks(ranks, len(test), k)
}

// testRanker computes where the test items of one case rank among all
// items, breaking every tie against the test item: an item scoring exactly
// what a test item scores ranks above it, and test items tied with each
// other rank in item order after every non-test item of their score. So a
// sparse scorer (neighbour or transition scores, mostly zero) gains nothing
// from ties, whatever order a top-K selection would have kept them in.
// NaN scores (the known items) never rank, and a test item that is known,
// or scores NaN, is a miss. It is reused across cases by one goroutine.
type testRanker struct {
	tests []scored // the rankable test items, best first
	diff  []int
	ranks []int
}

type scored struct {
	item  int32
	score float32
}

// rank returns the 0-based ranks of the rankable test items of test
// (sorted, distinct) under row, ascending. known is sorted.
func (t *testRanker) rank(row []float32, test, known []int32) []int {
	t.tests = t.tests[:0]
	for _, i := range test {
		if _, ok := slices.BinarySearch(known, i); ok {
			continue
		}
		if v := row[i]; !math.IsNaN(float64(v)) {
			t.tests = append(t.tests, scored{i, v})
		}
	}
	t.ranks = t.ranks[:0]
	if len(t.tests) == 0 {
		return t.ranks
	}
	slices.SortFunc(t.tests, func(a, b scored) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.item, b.item)
	})
	n := len(t.tests)
	// diff[j] counts the items whose score is >= tests[j].score but not
	// >= tests[j-1].score; its prefix sums are, per test item, the items
	// (test items included) scoring at least as much.
	t.diff = slices.Grow(t.diff[:0], n)[:n]
	clear(t.diff)
	lowest := t.tests[n-1].score
	for _, v := range row {
		if !(v >= lowest) { // NaN and everything below every test item
			continue
		}
		j, _ := slices.BinarySearchFunc(t.tests, v, func(s scored, v float32) int { return cmp.Compare(v, s.score) })
		t.diff[j]++
	}
	atLeast, testsAtLeast := 0, 0
	for j := range n {
		atLeast += t.diff[j]
		for testsAtLeast < n && t.tests[testsAtLeast].score >= t.tests[j].score {
			testsAtLeast++
		}
		// Non-test items scoring >= this one, then the test items before
		// it in (score desc, item) order.
		t.ranks = append(t.ranks, atLeast-testsAtLeast+j)
	}
	return t.ranks
}
