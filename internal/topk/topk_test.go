package topk

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestHeapMatchesFullSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ n, k int }{{0, 5}, {3, 5}, {100, 1}, {1000, 20}, {1000, 1000}, {50, 0}} {
		scores := make([]float32, tc.n)
		for i := range scores {
			scores[i] = float32(rng.IntN(50)) // many ties
		}
		h := New(tc.k)
		for i, s := range scores {
			h.Push(int32(i), s)
		}
		got := h.Sorted(nil)

		all := make([]Entry, tc.n)
		for i, s := range scores {
			all[i] = Entry{int32(i), s}
		}
		slices.SortFunc(all, func(a, b Entry) int {
			if a.Score != b.Score {
				if a.Score > b.Score {
					return -1
				}
				return 1
			}
			return int(a.Row - b.Row)
		})
		want := all[:min(tc.k, tc.n)]
		if !slices.Equal(got, want) {
			t.Errorf("n=%d k=%d: got %v, want %v", tc.n, tc.k, got, want)
		}
		if h.Len() != 0 {
			t.Errorf("n=%d k=%d: heap not empty after Sorted", tc.n, tc.k)
		}
	}
}

func TestHeapIgnoresNaN(t *testing.T) {
	h := New(2)
	nan := float32(0)
	nan = nan / nan
	h.Push(0, nan)
	h.Push(1, 1)
	got := h.Sorted(nil)
	if want := []Entry{{1, 1}}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestAccepts(t *testing.T) {
	h := New(2)
	if !h.Accepts(-100) {
		t.Error("an empty heap must accept anything")
	}
	h.Push(0, 5)
	h.Push(1, 7)
	if h.Accepts(4) {
		t.Error("a full heap with min 5 accepted 4")
	}
	if !h.Accepts(6) {
		t.Error("a full heap with min 5 rejected 6")
	}
}

func BenchmarkPush(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	scores := make([]float32, 100_000)
	for i := range scores {
		scores[i] = rng.Float32()
	}
	h := New(20)
	var out []Entry
	b.ReportAllocs()
	for b.Loop() {
		h.Reset(20)
		for i, s := range scores {
			if h.Accepts(s) {
				h.Push(int32(i), s)
			}
		}
		out = h.Sorted(out[:0])
	}
}

func TestWorstAndFull(t *testing.T) {
	h := New(2)
	if _, ok := h.Worst(); ok || h.Full() {
		t.Fatal("empty heap has a worst entry or is full")
	}
	h.Push(1, 5)
	h.Push(2, 7)
	h.Push(3, 6)
	got, ok := h.Worst()
	if want := (Entry{3, 6}); !ok || got != want || !h.Full() {
		t.Errorf("Worst() = %v, %v, Full %v; want %v, true, true", got, ok, h.Full(), want)
	}
}
