package topk

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
)

// TestPerRow checks every row's list against the row's candidates sorted in
// full, for rows with none, fewer than k and more than k candidates, on one
// and on several workers (more than one chunk of rows).
func TestPerRow(t *testing.T) {
	const rows, k = 200, 4
	// Row i's candidates: rows j < i%9 with score (i*j)%7, ties broken by
	// the lower row.
	candidates := func(i int32) []Entry {
		var e []Entry
		for j := range i % 9 {
			e = append(e, Entry{Row: j, Score: float32((i * j) % 7)})
		}
		return e
	}
	for _, workers := range []int{1, 3} {
		var scorers atomic.Int32
		got, err := PerRow(context.Background(), rows, k, workers, func() func(int32, *Heap) {
			scorers.Add(1)
			return func(i int32, h *Heap) {
				if h.Len() != 0 {
					t.Errorf("row %d: the heap is not empty", i)
				}
				for _, e := range candidates(i) {
					h.Push(e.Row, e.Score)
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Ptr) != rows+1 || got.Ptr[0] != 0 {
			t.Fatalf("workers=%d: Ptr has %d entries starting at %v, want %d starting at 0", workers, len(got.Ptr), got.Ptr[:1], rows+1)
		}
		for i := range int32(rows) {
			want := candidates(i)
			slices.SortStableFunc(want, func(a, b Entry) int {
				if a.Score > b.Score {
					return -1
				}
				if a.Score < b.Score {
					return 1
				}
				return int(a.Row - b.Row)
			})
			want = want[:min(k, len(want))]
			lo, hi := got.Ptr[i], got.Ptr[i+1]
			var list []Entry
			for p := lo; p < hi; p++ {
				list = append(list, Entry{Row: got.Row[p], Score: got.Score[p]})
			}
			if !slices.Equal(list, want) {
				t.Errorf("workers=%d row %d: got %v, want %v", workers, i, list, want)
			}
		}
		if int(scorers.Load()) != workers {
			t.Errorf("workers=%d: %d scorers made, want one per worker", workers, scorers.Load())
		}
	}
}

func TestPerRowCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := PerRow(ctx, 10, 2, 2, func() func(int32, *Heap) { return func(int32, *Heap) {} })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}
