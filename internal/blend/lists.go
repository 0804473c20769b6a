package blend

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"

	"github.com/recsys-dev/recsys/internal/topk"
)

// Sequences are users' item histories in time order: user u's items are
// Items[Ptr[u]:Ptr[u+1]], oldest first, repeats kept.
type Sequences struct {
	Ptr   []int64
	Items []int32
}

// Users is the number of users.
func (s Sequences) Users() int { return max(len(s.Ptr)-1, 0) }

// Of returns user u's items, oldest first.
func (s Sequences) Of(u int) []int32 { return s.Items[s.Ptr[u]:s.Ptr[u+1]] }

// FromEvents groups events (user row[k], item col[k] at time[k]) into
// sequences: each user's events in time order, ties in input order.
func FromEvents(users int, row, col []int32, time []int64) Sequences {
	ptr := make([]int64, users+1)
	for _, u := range row {
		ptr[u+1]++
	}
	for u := range users {
		ptr[u+1] += ptr[u]
	}
	next := slices.Clone(ptr[:users])
	order := make([]int32, len(row))
	for k, u := range row {
		order[next[u]] = int32(k)
		next[u]++
	}
	items := make([]int32, len(row))
	for u := range users {
		evs := order[ptr[u]:ptr[u+1]]
		slices.SortStableFunc(evs, func(a, b int32) int { return cmp.Compare(time[a], time[b]) })
		for k, e := range evs {
			items[ptr[u]+int64(k)] = col[e]
		}
	}
	return Sequences{Ptr: ptr, Items: items}
}

// Recent appends to dst the distinct items of seq (oldest first) newest
// first, each at its latest position: the order the scorer's recency terms
// read. seen must hold one slot per item, all zero; it is left zero.
func Recent(dst, seq []int32, seen []bool) []int32 {
	for k := len(seq) - 1; k >= 0; k-- {
		if i := seq[k]; !seen[i] {
			seen[i] = true
			dst = append(dst, i)
		}
	}
	for _, i := range dst {
		seen[i] = false
	}
	return dst
}

// Lists holds a bounded list of weighted items per item, heaviest first:
// item i's list is Item[Ptr[i]:Ptr[i+1]] with weights Weight[…].
type Lists struct {
	Ptr    []int64
	Item   []int32
	Weight []float32
}

// MaxListLen bounds one item's list.
const MaxListLen = 1024

// Len is the number of items the lists are for.
func (l *Lists) Len() int { return max(len(l.Ptr)-1, 0) }

// Of returns item i's list.
func (l *Lists) Of(i int32) ([]int32, []float32) {
	lo, hi := l.Ptr[i], l.Ptr[i+1]
	return l.Item[lo:hi], l.Weight[lo:hi]
}

// BuildOptions bound the lists.
type BuildOptions struct {
	// Neighbors is the length of each item's neighbour list (default 50).
	Neighbors int
	// Transitions is the length of each item's transition list (default 50).
	Transitions int
	// Window: an item counts as following i when it is at most Window
	// positions after i in a user's history, weighted 1/distance
	// (default 3).
	Window int
	// Workers build lists in parallel (default GOMAXPROCS).
	Workers int
}

func (o BuildOptions) withDefaults() (BuildOptions, error) {
	if o.Neighbors == 0 {
		o.Neighbors = 50
	}
	if o.Transitions == 0 {
		o.Transitions = 50
	}
	if o.Window == 0 {
		o.Window = 3
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	switch {
	case o.Neighbors < 1 || o.Neighbors > MaxListLen:
		return o, fmt.Errorf("neighbours per item must be within 1..%d, got %d", MaxListLen, o.Neighbors)
	case o.Transitions < 1 || o.Transitions > MaxListLen:
		return o, fmt.Errorf("transitions per item must be within 1..%d, got %d", MaxListLen, o.Transitions)
	case o.Window < 1 || o.Window > 64:
		return o, fmt.Errorf("transition window must be within 1..64, got %d", o.Window)
	}
	return o, nil
}

// positions returns, per item, the positions in s.Items where it occurs
// (an inverted index), and the user of every position.
func positions(s Sequences, items int) (ptr []int64, pos []int64, user []int32) {
	ptr = make([]int64, items+1)
	for _, i := range s.Items {
		ptr[i+1]++
	}
	for i := range items {
		ptr[i+1] += ptr[i]
	}
	next := slices.Clone(ptr[:items])
	pos = make([]int64, len(s.Items))
	user = make([]int32, len(s.Items))
	for u := range s.Users() {
		for p := s.Ptr[u]; p < s.Ptr[u+1]; p++ {
			i := s.Items[p]
			pos[next[i]] = p
			next[i]++
			user[p] = int32(u)
		}
	}
	return ptr, pos, user
}

// perItem runs fill for every item on workers goroutines, each with a dense
// accumulator; fill adds into acc (recording first touches in touched) and
// the best k of the touched items (excluding the item itself, weights
// > 0) become the item's list after norm(i, j, v) is applied.
func perItem(ctx context.Context, items, k, workers int, fill func(i int32, acc []float64, touched []int32) []int32, norm func(i, j int32, v float64) float64) (*Lists, error) {
	l, err := topk.PerRow(ctx, items, k, workers, func() func(int32, *topk.Heap) {
		acc := make([]float64, items)
		var touched []int32
		return func(i int32, heap *topk.Heap) {
			touched = fill(i, acc, touched[:0])
			for _, j := range touched {
				if j != i && acc[j] > 0 {
					if v := float32(norm(i, j, acc[j])); v > 0 && !math.IsInf(float64(v), 0) {
						heap.Push(j, v)
					}
				}
				acc[j] = 0
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return &Lists{Ptr: l.Ptr, Item: l.Row, Weight: l.Score}, nil
}

// Transitions counts, for every item i, the items that follow it within
// opt.Window positions in a user's history (weight 1/distance; repeats of i
// itself are skipped), normalizes the counts to sum to 1 per item (an
// estimate of P(next = j | i)) and keeps the opt.Transitions largest.
func Transitions(ctx context.Context, s Sequences, items int, opt BuildOptions) (*Lists, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkSequences(s, items); err != nil {
		return nil, err
	}
	ptr, pos, user := positions(s, items)
	total := make([]float64, items)
	for i := range items {
		var t float64
		for _, p := range pos[ptr[i]:ptr[i+1]] {
			end := s.Ptr[user[p]+1]
			for d := int64(1); d <= int64(opt.Window) && p+d < end; d++ {
				if s.Items[p+d] != int32(i) {
					t += 1 / float64(d)
				}
			}
		}
		total[i] = t
	}
	fill := func(i int32, acc []float64, touched []int32) []int32 {
		for _, p := range pos[ptr[i]:ptr[i+1]] {
			end := s.Ptr[user[p]+1]
			for d := int64(1); d <= int64(opt.Window) && p+d < end; d++ {
				j := s.Items[p+d]
				if acc[j] == 0 {
					touched = append(touched, j)
				}
				acc[j] += 1 / float64(d)
			}
		}
		return touched
	}
	return perItem(ctx, items, opt.Transitions, opt.Workers, fill, func(i, _ int32, v float64) float64 { return v / total[i] })
}

// Neighbors computes, for every item, the opt.Neighbors items most similar
// by the cosine of their user sets (each user counted once per item):
// sim(i, j) = |U_i ∩ U_j| / √(|U_i|·|U_j|).
func Neighbors(ctx context.Context, s Sequences, items int, opt BuildOptions) (*Lists, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkSequences(s, items); err != nil {
		return nil, err
	}
	// Distinct items per user, then users per item.
	seen := make([]bool, items)
	d := Sequences{Ptr: make([]int64, s.Users()+1)}
	for u := range s.Users() {
		d.Items = Recent(d.Items, s.Of(u), seen)
		d.Ptr[u+1] = int64(len(d.Items))
	}
	ptr, pos, user := positions(d, items)
	count := make([]float64, items)
	for i := range items {
		count[i] = float64(ptr[i+1] - ptr[i])
	}
	fill := func(i int32, acc []float64, touched []int32) []int32 {
		for _, p := range pos[ptr[i]:ptr[i+1]] {
			for _, j := range d.Of(int(user[p])) {
				if acc[j] == 0 {
					touched = append(touched, j)
				}
				acc[j]++
			}
		}
		return touched
	}
	return perItem(ctx, items, opt.Neighbors, opt.Workers, fill, func(i, j int32, v float64) float64 {
		return v / math.Sqrt(count[i]*count[j])
	})
}

func checkSequences(s Sequences, items int) error {
	if len(s.Ptr) == 0 || s.Ptr[0] != 0 || s.Ptr[len(s.Ptr)-1] != int64(len(s.Items)) {
		return errors.New("sequences: pointers do not cover the items")
	}
	for u := range s.Users() {
		if s.Ptr[u+1] < s.Ptr[u] {
			return fmt.Errorf("sequences: user %d has a negative length", u)
		}
	}
	for _, i := range s.Items {
		if i < 0 || int(i) >= items {
			return fmt.Errorf("sequences: item %d outside %d items", i, items)
		}
	}
	return nil
}

// listsVersion is the payload version of the "neighbors" and "transitions"
// sections.
const listsVersion = 1

// appendLists encodes l (format in models/README.md): uint32 items N, then
// per item a uint32 count c followed by c × (uint32 item, float32 weight).
func appendLists(b []byte, l *Lists) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(l.Len()))
	for i := range l.Len() {
		items, ws := l.Of(int32(i))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(items)))
		for k, j := range items {
			b = binary.LittleEndian.AppendUint32(b, uint32(j))
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(ws[k]))
		}
	}
	return b
}

// ErrCorrupt wraps every defect of a blend section.
var ErrCorrupt = errors.New("corrupt blend section")

// decodeLists reads what appendLists writes for a model of n items,
// checking every bound before allocating: the item count, list lengths
// (at most MaxListLen), items in range, distinct and not the item itself,
// weights finite and > 0, and the exact payload length.
func decodeLists(kind string, b []byte, n int) (*Lists, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrCorrupt, kind, fmt.Sprintf(format, args...))
	}
	if len(b) < 4 {
		return nil, bad("truncated")
	}
	if got := binary.LittleEndian.Uint32(b); int64(got) != int64(n) {
		return nil, bad("lists for %d items, the model has %d", got, n)
	}
	b = b[4:]
	// Every item needs at least its 4-byte count.
	if int64(len(b)) < 4*int64(n) {
		return nil, bad("truncated")
	}
	entries := (int64(len(b)) - 4*int64(n)) / 8
	l := &Lists{Ptr: make([]int64, n+1), Item: make([]int32, 0, entries), Weight: make([]float32, 0, entries)}
	stamp := make([]int32, n) // stamp[j] == i+1: j already in item i's list
	for i := range n {
		if len(b) < 4 {
			return nil, bad("truncated")
		}
		c := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if c > MaxListLen {
			return nil, bad("item %d has a list of %d, at most %d", i, c, MaxListLen)
		}
		if int64(len(b)) < 8*int64(c) {
			return nil, bad("truncated")
		}
		for range c {
			j := binary.LittleEndian.Uint32(b)
			w := math.Float32frombits(binary.LittleEndian.Uint32(b[4:]))
			b = b[8:]
			switch {
			case int64(j) >= int64(n):
				return nil, bad("item %d lists item %d of %d", i, j, n)
			case int(j) == i:
				return nil, bad("item %d lists itself", i)
			case stamp[j] == int32(i+1):
				return nil, bad("item %d lists item %d twice", i, j)
			case !(w > 0) || math.IsInf(float64(w), 0):
				return nil, bad("item %d has weight %v for item %d", i, w, j)
			}
			stamp[j] = int32(i + 1)
			l.Item = append(l.Item, int32(j))
			l.Weight = append(l.Weight, w)
		}
		l.Ptr[i+1] = int64(len(l.Item))
	}
	if len(b) != 0 {
		return nil, bad("%d bytes after the lists", len(b))
	}
	return l, nil
}
