package eval

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The metric names; a key in ModelResult.Metrics is name@K, e.g. "ndcg@10".
const (
	MetricNDCG     = "ndcg"
	MetricRecall   = "recall"
	MetricHR       = "hr"
	MetricMAP      = "map"
	MetricCoverage = "coverage"
)

// metricNames lists the metrics in the column order of tables.
func metricNames() []string {
	return []string{MetricNDCG, MetricRecall, MetricHR, MetricMAP, MetricCoverage}
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
	ndcg, recall, hr, ap float64
}

// scoreList computes the per-user metrics of ranked (best first; only the
// first k are looked at) against test (sorted, distinct, non-empty).
func scoreList(ranked []int32, test []int32, k int) listMetrics {
	var m listMetrics
	n := min(k, len(test))
	var dcg, idcg, precSum float64
	hits := 0
	for r, item := range ranked[:min(k, len(ranked))] {
		if _, ok := slices.BinarySearch(test, item); !ok {
			continue
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
	m.recall = float64(hits) / float64(n)
	m.ndcg = dcg / idcg
	m.ap = precSum / float64(n)
	return m
}
