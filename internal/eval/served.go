package eval

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/recsys-dev/recsys/internal/itemindex"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/topk"
	"github.com/recsys-dev/recsys/internal/traindata"
)

// ServedName is the report's name of the served path.
const ServedName = "served"

// RecallVsExact is the metric name of the served path's recall against the
// exact scan: the share of the exact top Depth (known items left out) that
// the index search returns.
func RecallVsExact(depth int) string { return fmt.Sprintf("recall_vs_exact@%d", depth) }

// Served ranks as the server does with its partitioned index forced
// (recsysd --index-min-items 0): each case's vector is folded in as ALS
// does, the index is searched for the Depth best items the case does not
// know, and only those are ranked (with their exact scores); every other
// item scores −Inf. It measures, besides the report's metrics, how many of
// the exact scan's top Depth the search returns.
type Served struct {
	model *mf.Model
	ix    *itemindex.Index
	depth int
	probe int
	pool  sync.Pool // *servedScratch
	exactRecall
}

type servedScratch struct {
	ws     mf.Workspace
	w      []float64
	search itemindex.Search
	got    []topk.Entry
	exact  []float32
	heap   topk.Heap
}

// NewServed searches model through ix (probe cells as the server's
// --index-probe, 0: the default) for the depth best items of each case.
func NewServed(model *mf.Model, ix *itemindex.Index, depth, probe int) *Served {
	return &Served{model: model, ix: ix, depth: depth, probe: probe}
}

// Name is "served".
func (s *Served) Name() string { return ServedName }

// Scores implements Recommender.
func (s *Served) Scores(cases []traindata.Case, out []float32) error {
	n := s.model.NumItems()
	sc, _ := s.pool.Get().(*servedScratch)
	if sc == nil {
		sc = &servedScratch{}
	}
	defer s.pool.Put(sc)
	if cap(sc.exact) < n {
		sc.exact = make([]float32, n)
	}
	exact := sc.exact[:n]
	for c, cs := range cases {
		row := out[c*n : (c+1)*n]
		for i := range row {
			row[i] = float32(math.Inf(-1))
		}
		sc.w = sc.w[:0]
		for _, w := range cs.KnownWeights {
			sc.w = append(sc.w, float64(w))
		}
		x, err := s.model.FoldIn(&sc.ws, cs.Known, sc.w)
		if err != nil {
			return fmt.Errorf("served: fold in a user with %d items: %w", len(cs.Known), err)
		}
		admit := unknownTo(cs.Known)
		if err := s.ix.Start(&sc.search, itemindex.Query{X: x, Probe: s.probe}); err != nil {
			return fmt.Errorf("served: %w", err)
		}
		sc.got = sc.search.Top(s.depth, nil, admit, sc.got[:0])
		for _, e := range sc.got {
			row[e.Row] = e.Score
		}
		s.model.Scores(x, exact)
		sc.got = s.add(exact, row, s.depth, admit, &sc.heap, sc.got)
	}
	return nil
}

// ServedRow evaluates the served path of model on s (the index built with
// defaults and forced, as a server with --index-min-items 0 would) and
// returns its row, with RecallVsExact(depth) added; depth is the largest K.
func ServedRow(ctx context.Context, s *traindata.Split, model *mf.Model, probe int, opt Options) (ModelResult, error) {
	return servedRow(ctx, s, model, ServedName, opt, func(ix *itemindex.Index, depth int) (Recommender, *exactRecall) {
		rec := NewServed(model, ix, depth, probe)
		return rec, &rec.exactRecall
	})
}

// ServedBlendName is the report's name of the served path of a blend.
const ServedBlendName = "served blend"

// ServedBlend ranks a blended model as the server does with its
// partitioned index forced: each case is folded in as Blend does, the
// index is searched for the best items by MF score (over-fetched) and,
// with every item the case's neighbour and transition terms touch, they
// are scored with the full blend (blend.Blend.Top); the Depth best the
// case does not know are ranked, every other item scores −Inf. It
// measures, besides the report's metrics, how many of the exact blend's
// top Depth (every item scored) the served path returns.
type ServedBlend struct {
	exact *Blend
	ix    *itemindex.Index
	depth int
	probe int
	pool  sync.Pool // *servedBlendScratch
	exactRecall
}

type servedBlendScratch struct {
	search itemindex.Search
	got    []topk.Entry
	exact  []float32
	heap   topk.Heap
}

// NewServedBlend searches exact's model through ix (probe cells as the
// server's --index-probe, 0: the default) for the depth best items of each
// case by exact's blend.
func NewServedBlend(exact *Blend, ix *itemindex.Index, depth, probe int) *ServedBlend {
	return &ServedBlend{exact: exact, ix: ix, depth: depth, probe: probe}
}

// Name is "served blend".
func (s *ServedBlend) Name() string { return ServedBlendName }

// Scores implements Recommender.
func (s *ServedBlend) Scores(cases []traindata.Case, out []float32) error {
	r := s.exact
	n := r.model.NumItems()
	if len(out) < len(cases)*n {
		return fmt.Errorf("%s: output holds %d scores, need %d", ServedBlendName, len(out), len(cases)*n)
	}
	bsc := r.scratch()
	defer r.pool.Put(bsc)
	sc, _ := s.pool.Get().(*servedBlendScratch)
	if sc == nil {
		sc = &servedBlendScratch{}
	}
	defer s.pool.Put(sc)
	if cap(sc.exact) < n {
		sc.exact = make([]float32, n)
	}
	exact := sc.exact[:n]
	for c, cs := range cases {
		row := out[c*n : (c+1)*n]
		for i := range row {
			row[i] = float32(math.Inf(-1))
		}
		if err := r.recent(bsc, cs); err != nil {
			return err
		}
		r.b.RecencyWeights(bsc.w)
		x, err := r.model.FoldIn(&bsc.ws, bsc.recent, bsc.w)
		if err != nil {
			return fmt.Errorf("%s: fold in a user with %d items: %w", ServedBlendName, len(bsc.recent), err)
		}
		admit := unknownTo(cs.Known)
		if err := s.ix.Start(&sc.search, itemindex.Query{X: x, Probe: s.probe}); err != nil {
			return fmt.Errorf("%s: %w", ServedBlendName, err)
		}
		r.b.Prepare(&bsc.bs, x, bsc.recent)
		sc.got = r.b.Top(&bsc.bs, &sc.search, s.depth, nil, admit, sc.got[:0])
		for _, e := range sc.got {
			row[e.Row] = e.Score
		}
		r.model.Scores(x, exact)
		r.b.Finish(&bsc.bs, exact)
		bsc.bs.Release()
		sc.got = s.add(exact, row, s.depth, admit, &sc.heap, sc.got)
	}
	return nil
}

// ServedBlendRow evaluates the served path of exact's blended model on s
// (the index built with defaults and forced, as a server with
// --index-min-items 0 would) and returns its row, with
// RecallVsExact(depth) against the exact blend added; depth is the
// largest K.
func ServedBlendRow(ctx context.Context, s *traindata.Split, exact *Blend, probe int, opt Options) (ModelResult, error) {
	return servedRow(ctx, s, exact.model, ServedBlendName, opt, func(ix *itemindex.Index, depth int) (Recommender, *exactRecall) {
		rec := NewServedBlend(exact, ix, depth, probe)
		return rec, &rec.exactRecall
	})
}

// servedRow evaluates the served path newRec makes for model's index (built
// with defaults and forced) on s, with RecallVsExact(depth) added; depth is
// the largest K.
func servedRow(ctx context.Context, s *traindata.Split, model *mf.Model, name string, opt Options,
	newRec func(ix *itemindex.Index, depth int) (Recommender, *exactRecall)) (ModelResult, error) {
	opt, err := opt.withDefaults(s.Matrix.Cols)
	if err != nil {
		return ModelResult{}, err
	}
	ix, err := itemindex.ForModel(model)
	if err != nil {
		return ModelResult{}, fmt.Errorf("%s: %w", name, err)
	}
	depth := opt.Ks[len(opt.Ks)-1]
	rec, recall := newRec(ix, depth)
	res, err := Evaluate(ctx, s, rec, opt)
	if err != nil {
		return ModelResult{}, err
	}
	res.Metrics[RecallVsExact(depth)] = recall.Recall()
	return res, nil
}

// exactRecall counts how many of the exact ranking's top Depth a served
// path returned.
type exactRecall struct{ hits, total atomic.Int64 }

// Recall is the share of the exact top Depth the served path returned so
// far (NaN before any case).
func (r *exactRecall) Recall() float64 {
	if t := r.total.Load(); t > 0 {
		return float64(r.hits.Load()) / float64(t)
	}
	return math.NaN()
}

// add counts one case: the depth best items of exact that admit lets
// through, against row, where the served path's unreturned items score
// −Inf. h and buf are scratch; add returns buf grown.
func (r *exactRecall) add(exact, row []float32, depth int, admit func(int32) bool, h *topk.Heap, buf []topk.Entry) []topk.Entry {
	h.Reset(depth)
	for i, v := range exact {
		if h.Accepts(v) && admit(int32(i)) {
			h.Push(int32(i), v)
		}
	}
	want := h.Len()
	buf = h.Sorted(buf[:0])
	hits := 0
	for _, w := range buf {
		if row[w.Row] != float32(math.Inf(-1)) {
			hits++
		}
	}
	r.hits.Add(int64(hits))
	r.total.Add(int64(want))
	return buf
}

// unknownTo admits the items not in known (sorted).
func unknownTo(known []int32) func(int32) bool {
	return func(j int32) bool { _, k := slices.BinarySearch(known, j); return !k }
}
