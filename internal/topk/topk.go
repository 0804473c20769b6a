// Package topk selects the k best-scoring rows of a score vector with a
// bounded min-heap: O(n log k) time, no allocation once the heap has its
// capacity, and a cheap rejection (one comparison) for the many rows that
// cannot enter it.
package topk

import "slices"

// Entry is one selected row.
type Entry struct {
	Row   int32
	Score float32
}

// Heap keeps the k highest-scoring entries pushed into it. Ties are broken by
// the lower row, so results are deterministic. The zero value is unusable;
// call Reset first.
type Heap struct {
	k int
	e []Entry
}

// New returns a heap for the best k entries.
func New(k int) *Heap {
	h := &Heap{}
	h.Reset(k)
	return h
}

// Reset empties the heap and sets its size to k, keeping its buffer.
func (h *Heap) Reset(k int) {
	h.k = k
	if cap(h.e) < k {
		h.e = make([]Entry, 0, k)
	}
	h.e = h.e[:0]
}

// Len is the number of entries held.
func (h *Heap) Len() int { return len(h.e) }

// better reports whether a ranks above b.
func better(a, b Entry) bool {
	return a.Score > b.Score || (a.Score == b.Score && a.Row < b.Row)
}

// Accepts reports whether an entry with this score could enter the heap now.
// Callers use it to skip expensive checks (exclusion, availability) for rows
// that would be rejected anyway.
func (h *Heap) Accepts(score float32) bool {
	return len(h.e) < h.k || score >= h.e[0].Score
}

// Full reports whether the heap holds k entries.
func (h *Heap) Full() bool { return len(h.e) >= h.k }

// Worst returns the lowest-ranked entry held; false when the heap is empty.
func (h *Heap) Worst() (Entry, bool) {
	if len(h.e) == 0 {
		return Entry{}, false
	}
	return h.e[0], true
}

// Push offers an entry; it is kept if it is among the best k so far.
func (h *Heap) Push(row int32, score float32) {
	if h.k <= 0 || score != score { // NaN never ranks
		return
	}
	e := Entry{Row: row, Score: score}
	if len(h.e) < h.k {
		h.e = append(h.e, e)
		h.up(len(h.e) - 1)
		return
	}
	if !better(e, h.e[0]) {
		return
	}
	h.e[0] = e
	h.down(0)
}

// Sorted returns the entries best first, appended to dst. The heap is left
// empty.
func (h *Heap) Sorted(dst []Entry) []Entry {
	start := len(dst)
	dst = append(dst, h.e...)
	out := dst[start:]
	slices.SortFunc(out, func(a, b Entry) int {
		if better(a, b) {
			return -1
		}
		if better(b, a) {
			return 1
		}
		return 0
	})
	h.e = h.e[:0]
	return dst
}

// The heap is ordered so that the worst entry is at the root.
func (h *Heap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !better(h.e[p], h.e[i]) {
			break
		}
		h.e[p], h.e[i] = h.e[i], h.e[p]
		i = p
	}
}

func (h *Heap) down(i int) {
	n := len(h.e)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		w := l
		if r := l + 1; r < n && better(h.e[l], h.e[r]) {
			w = r
		}
		if !better(h.e[i], h.e[w]) {
			return
		}
		h.e[i], h.e[w] = h.e[w], h.e[i]
		i = w
	}
}
