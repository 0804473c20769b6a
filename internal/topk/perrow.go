package topk

import (
	"context"
	"sync"
)

// Lists holds k or fewer entries per row in compressed form: row i's
// entries, best first, are Row[Ptr[i]:Ptr[i+1]] with scores
// Score[Ptr[i]:Ptr[i+1]].
type Lists struct {
	Ptr   []int64
	Row   []int32
	Score []float32
}

// PerRow selects, for each of rows rows, the k best entries that the row's
// scorer pushes, on workers goroutines that take rows in chunks of 64.
// newScorer is called once per worker, on the worker's goroutine (so a
// scorer may keep buffers of its own, a dense accumulator say), and returns
// the function that pushes row i's candidates into h, which it receives
// empty. PerRow stops early, with ctx's error, when ctx is done.
func PerRow(ctx context.Context, rows, k, workers int, newScorer func() func(i int32, h *Heap)) (*Lists, error) {
	// Fixed-size lists (padded with -1) so workers write disjoint ranges;
	// compacted below.
	row := make([]int32, rows*k)
	score := make([]float32, rows*k)
	for i := range row {
		row[i] = -1
	}
	const chunk = 64
	nChunks := (rows + chunk - 1) / chunk
	var (
		mu   sync.Mutex
		next int
		wg   sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			scorer := newScorer()
			heap := New(k)
			var best []Entry
			for ctx.Err() == nil {
				mu.Lock()
				c := next
				next++
				mu.Unlock()
				if c >= nChunks {
					return
				}
				for i := c * chunk; i < min(rows, (c+1)*chunk); i++ {
					heap.Reset(k)
					scorer(int32(i), heap)
					best = heap.Sorted(best[:0])
					for r, e := range best {
						row[i*k+r], score[i*k+r] = e.Row, e.Score
					}
				}
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l := &Lists{Ptr: make([]int64, rows+1)}
	for i := range rows {
		for r := 0; r < k && row[i*k+r] >= 0; r++ {
			l.Row = append(l.Row, row[i*k+r])
			l.Score = append(l.Score, score[i*k+r])
		}
		l.Ptr[i+1] = int64(len(l.Row))
	}
	return l, nil
}
