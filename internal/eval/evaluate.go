package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/recsys-dev/recsys/internal/sparse"
	"github.com/recsys-dev/recsys/internal/topk"
	"github.com/recsys-dev/recsys/internal/traindata"
)

// Recommender scores every item for test cases. Implementations must be
// safe for concurrent use: the evaluator calls Scores from several
// goroutines, each with its own cases and output.
type Recommender interface {
	// Name is the model's name in reports ("als", "popularity", "itemknn").
	Name() string
	// Scores writes, for case k, a score for every item (higher is better)
	// into out[k*items:(k+1)*items], items being the number of columns of
	// the split's matrix. Known items need not be excluded.
	Scores(cases []traindata.Case, out []float32) error
}

// Options control an evaluation.
type Options struct {
	// Ks are the cut-offs (default 10 and 20).
	Ks []int
	// Workers score blocks of cases in parallel (default GOMAXPROCS).
	Workers int
	// Block is the number of cases scored with one call (default: 64, or
	// fewer when the catalogue is so large that a block's scores would
	// exceed 16 MiB).
	Block int
	// Rerank, when set, turns each case's ranked list (best first,
	// RerankDepth long) into the list the metrics are computed on, the way
	// a business rule applied after ranking would (for example a cap per
	// category); it may reuse dst and must be safe for concurrent use.
	// The metrics of a reranked list are computed on that list, so ties
	// are broken as the top-K selection kept them, not against the test
	// item as without Rerank.
	Rerank func(dst, ranked []int32) []int32
	// RerankDepth is how many items are ranked for Rerank (default 10 ×
	// the largest K).
	RerankDepth int
	// Served adds Compare's "served" row (ServedRow): its MF model searched
	// through the partitioned index, forced, as recsysd serves it; and
	// BlendAblation's "served blend" row (ServedBlendRow).
	Served bool
}

func (o Options) withDefaults(items int) (Options, error) {
	if len(o.Ks) == 0 {
		o.Ks = []int{10, 20}
	}
	for _, k := range o.Ks {
		if k < 1 {
			return o, fmt.Errorf("cut-off K must be >= 1, got %d", k)
		}
	}
	o.Ks = slices.Compact(slices.Sorted(slices.Values(o.Ks)))
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Block <= 0 {
		o.Block = max(1, min(64, (4<<20)/max(items, 1)))
	}
	if o.RerankDepth <= 0 {
		o.RerankDepth = 10 * o.Ks[len(o.Ks)-1]
	}
	return o, nil
}

// ModelResult is one model's metrics, keyed like "ndcg@10".
type ModelResult struct {
	Name    string
	Metrics map[string]float64
	// Activity is the quality by the test users' history size (the
	// HTML report's activity chart); not part of the JSON form.
	Activity []ActivityBucket
	// Popularity is the popularity bias of the model's lists (the HTML
	// report's popularity chart); not part of the JSON form.
	Popularity PopularityBias
	// Scores is the distribution of the scores of the model's top-K items
	// (the HTML report's score chart); not part of the JSON form.
	Scores ScoreHistogram
}

// ScoreHistogram counts the scores of the top-K items of every list in
// equal bins over [Min, Max].
type ScoreHistogram struct {
	K        int
	Min, Max float64
	Counts   []int
}

// scoreBins is the number of bins of a ScoreHistogram.
const scoreBins = 20

func histogram(k int, scores []float32) ScoreHistogram {
	h := ScoreHistogram{K: k, Min: math.Inf(1), Max: math.Inf(-1)}
	for _, v := range scores {
		h.Min, h.Max = math.Min(h.Min, float64(v)), math.Max(h.Max, float64(v))
	}
	if len(scores) == 0 {
		return ScoreHistogram{}
	}
	h.Counts = make([]int, scoreBins)
	width := (h.Max - h.Min) / scoreBins
	for _, v := range scores {
		b := scoreBins - 1
		if width > 0 {
			b = min(int((float64(v)-h.Min)/width), scoreBins-1)
		}
		h.Counts[b]++
	}
	return h
}

// PopularityBias describes how popular the items a model recommends are,
// by their popularity percentile in the training data (1: the most
// popular item, 0: the least; a list drawn at random from the catalog
// averages 0.5).
type PopularityBias struct {
	K int
	// MeanPercentile is the mean percentile of the items in the top-K
	// lists; TopDecileShare the share of them among the 10% most popular.
	MeanPercentile, TopDecileShare float64
}

// popularityPercentiles is every item's popularity percentile in m: the
// share of items with fewer users (ties share the lower rank).
func popularityPercentiles(m *sparse.Matrix) []float64 {
	counts := make([]int, m.Cols)
	for _, c := range m.Indices {
		counts[c]++
	}
	sorted := slices.Clone(counts)
	slices.Sort(sorted)
	pct := make([]float64, m.Cols)
	for i, c := range counts {
		below, _ := slices.BinarySearch(sorted, c)
		pct[i] = float64(below) / float64(max(m.Cols-1, 1))
	}
	return pct
}

// ActivityBucket is a model's quality on the test users whose history
// (the items the recommender was given) has a size within the bucket.
type ActivityBucket struct {
	Label        string // "5-19 items"
	Users        int
	K            int
	NDCG, Recall float64
}

// activityEdges are the lower bounds of the activity buckets' history
// sizes.
var activityEdges = []int{0, 5, 20, 100}

func activityBucket(known int) int {
	b := 0
	for i, e := range activityEdges {
		if known >= e {
			b = i
		}
	}
	return b
}

func activityLabel(b int) string {
	if b == len(activityEdges)-1 {
		return fmt.Sprintf("%d+ items", activityEdges[b])
	}
	return fmt.Sprintf("%d-%d items", activityEdges[b], activityEdges[b+1]-1)
}

// Evaluate ranks all items for every case of s with rec and averages the
// metrics over the cases (coverage is over the catalogue). Ties are broken
// against the test item and a test item the case knows is a miss (see
// testRanker). The result does not depend on the number of workers.
func Evaluate(ctx context.Context, s *traindata.Split, rec Recommender, opt Options) (ModelResult, error) {
	items := s.Matrix.Cols
	opt, err := opt.withDefaults(items)
	if err != nil {
		return ModelResult{}, fmt.Errorf("evaluate %s: %w", rec.Name(), err)
	}
	if len(s.Cases) == 0 {
		return ModelResult{}, fmt.Errorf("evaluate %s: the split has no test cases", rec.Name())
	}
	maxK := opt.Ks[len(opt.Ks)-1]
	depth := maxK
	if opt.Rerank != nil {
		depth = max(maxK, opt.RerankDepth)
	}
	nk := len(opt.Ks)
	// Per-case metrics, summed in case order at the end so the averages do
	// not depend on scheduling.
	perCase := make([]listMetrics, len(s.Cases)*nk)
	// The popularity of each case's list at popK, summed in case order.
	popK := opt.Ks[len(opt.Ks)-1]
	if slices.Contains(opt.Ks, 10) {
		popK = 10
	}
	pct := popularityPercentiles(s.Matrix)
	type popSum struct {
		pct, top float64
		n        int
	}
	perCasePop := make([]popSum, len(s.Cases))
	topScores := make([]float32, len(s.Cases)*popK) // NaN: fewer than popK ranked
	for i := range topScores {
		topScores[i] = float32(math.NaN())
	}
	// One item bitmap per worker and cut-off for coverage; ORed at the end.
	type state struct {
		out     []float32
		heap    *topk.Heap
		ranked  []topk.Entry
		list    []int32
		rerank  []int32
		covered [][]bool
		ranker  testRanker
		err     error
	}
	states := make([]*state, opt.Workers)
	for w := range states {
		st := &state{out: make([]float32, opt.Block*items), heap: topk.New(depth), covered: make([][]bool, nk)}
		for j := range st.covered {
			st.covered[j] = make([]bool, items)
		}
		states[w] = st
	}
	nBlocks := (len(s.Cases) + opt.Block - 1) / opt.Block
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for _, st := range states {
		wg.Go(func() {
			for ctx.Err() == nil && !failed.Load() {
				b := int(next.Add(1) - 1)
				if b >= nBlocks {
					return
				}
				lo, hi := b*opt.Block, min(len(s.Cases), (b+1)*opt.Block)
				cases := s.Cases[lo:hi]
				out := st.out[:len(cases)*items]
				if err := rec.Scores(cases, out); err != nil {
					st.err = err
					failed.Store(true)
					return
				}
				for c := range cases {
					row := out[c*items : (c+1)*items]
					for _, i := range cases[c].Known {
						row[i] = float32(math.NaN()) // the heap never keeps NaN
					}
					st.heap.Reset(depth)
					for i, v := range row {
						if st.heap.Accepts(v) {
							st.heap.Push(int32(i), v)
						}
					}
					st.ranked = st.heap.Sorted(st.ranked[:0])
					for r, e := range st.ranked[:min(popK, len(st.ranked))] {
						topScores[(lo+c)*popK+r] = e.Score
					}
					st.list = st.list[:0]
					for _, e := range st.ranked {
						st.list = append(st.list, e.Row)
					}
					if opt.Rerank != nil {
						st.rerank = opt.Rerank(st.rerank[:0], st.list)
						st.list, st.rerank = st.rerank, st.list
					}
					var ranks []int
					if opt.Rerank == nil {
						ranks = st.ranker.rank(row, cases[c].Test, cases[c].Known)
					}
					ps := &perCasePop[lo+c]
					for _, i := range st.list[:min(popK, len(st.list))] {
						ps.pct += pct[i]
						if pct[i] >= 0.9 {
							ps.top++
						}
						ps.n++
					}
					for j, k := range opt.Ks {
						if opt.Rerank == nil {
							perCase[(lo+c)*nk+j] = metricsFromRanks(ranks, len(cases[c].Test), k)
						} else {
							perCase[(lo+c)*nk+j] = scoreList(st.list, cases[c].Test, k)
						}
						for _, i := range st.list[:min(k, len(st.list))] {
							st.covered[j][i] = true
						}
					}
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return ModelResult{}, err
	}
	var errs []error
	for _, st := range states {
		if st.err != nil {
			errs = append(errs, st.err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return ModelResult{}, fmt.Errorf("evaluate %s: %w", rec.Name(), err)
	}
	res := ModelResult{Name: rec.Name(), Metrics: make(map[string]float64, 6*nk)}
	n := float64(len(s.Cases))
	for j, k := range opt.Ks {
		var sum listMetrics
		for c := range s.Cases {
			m := perCase[c*nk+j]
			sum.ndcg += m.ndcg
			sum.recall += m.recall
			sum.recallCapped += m.recallCapped
			sum.hr += m.hr
			sum.ap += m.ap
		}
		covered := 0
		for i := range items {
			for _, st := range states {
				if st.covered[j][i] {
					covered++
					break
				}
			}
		}
		res.Metrics[Key(MetricNDCG, k)] = sum.ndcg / n
		res.Metrics[Key(MetricRecall, k)] = sum.recall / n
		res.Metrics[Key(MetricRecallCapped, k)] = sum.recallCapped / n
		res.Metrics[Key(MetricHR, k)] = sum.hr / n
		res.Metrics[Key(MetricMAP, k)] = sum.ap / n
		res.Metrics[Key(MetricCoverage, k)] = float64(covered) / float64(items)
	}
	var pop popSum
	for _, ps := range perCasePop {
		pop.pct, pop.top, pop.n = pop.pct+ps.pct, pop.top+ps.top, pop.n+ps.n
	}
	if pop.n > 0 {
		res.Popularity = PopularityBias{K: popK, MeanPercentile: pop.pct / float64(pop.n), TopDecileShare: pop.top / float64(pop.n)}
	}
	finite := topScores[:0]
	for _, v := range topScores {
		if !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) {
			finite = append(finite, v)
		}
	}
	res.Scores = histogram(popK, finite)
	// By activity, at K=10 if evaluated, else the largest cut-off.
	j := len(opt.Ks) - 1
	if i := slices.Index(opt.Ks, 10); i >= 0 {
		j = i
	}
	buckets := make([]ActivityBucket, len(activityEdges))
	for c := range s.Cases {
		b := &buckets[activityBucket(len(s.Cases[c].Known))]
		m := perCase[c*nk+j]
		b.Users++
		b.NDCG += m.ndcg
		b.Recall += m.recall
	}
	for i, b := range buckets {
		if b.Users == 0 {
			continue
		}
		b.Label, b.K = activityLabel(i), opt.Ks[j]
		b.NDCG /= float64(b.Users)
		b.Recall /= float64(b.Users)
		res.Activity = append(res.Activity, b)
	}
	return res, nil
}

// Run evaluates every recommender on the same split.
func Run(ctx context.Context, s *traindata.Split, recs []Recommender, opt Options) (*Report, error) {
	r := &Report{Split: s.Name, Cases: len(s.Cases)}
	for _, rec := range recs {
		m, err := Evaluate(ctx, s, rec, opt)
		if err != nil {
			return nil, err
		}
		r.Models = append(r.Models, m)
	}
	return r, nil
}
