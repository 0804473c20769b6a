package blend

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/mf/mftest"
	"github.com/recsys-dev/recsys/internal/topk"
)

// seqs builds Sequences from per-user item lists.
func seqs(users ...[]int32) Sequences {
	s := Sequences{Ptr: []int64{0}}
	for _, u := range users {
		s.Items = append(s.Items, u...)
		s.Ptr = append(s.Ptr, int64(len(s.Items)))
	}
	return s
}

func listOf(l *Lists, i int32) map[int32]float32 {
	items, ws := l.Of(i)
	m := map[int32]float32{}
	for k, j := range items {
		m[j] = ws[k]
	}
	return m
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-5*max(1, math.Abs(b)) }

func TestTransitionsHandComputed(t *testing.T) {
	s := seqs([]int32{0, 1, 2}, []int32{0, 1}, []int32{0, 2}, []int32{3, 3, 0})
	for _, tc := range []struct {
		window int
		want   map[int32]float32
	}{
		// window 1: 0 is followed by 1 twice and 2 once.
		{1, map[int32]float32{1: 2.0 / 3, 2: 1.0 / 3}},
		// window 2 (1/distance): 1: 1+1, 2: 0.5+1.
		{2, map[int32]float32{1: 2 / 3.5, 2: 1.5 / 3.5}},
	} {
		l, err := Transitions(context.Background(), s, 4, BuildOptions{Window: tc.window, Workers: 2})
		if err != nil {
			t.Fatal(err)
		}
		got := listOf(l, 0)
		if len(got) != len(tc.want) {
			t.Fatalf("window %d: item 0's transitions %v, want %v", tc.window, got, tc.want)
		}
		for j, w := range tc.want {
			if !near(float64(got[j]), float64(w)) {
				t.Errorf("window %d: P(%d|0) = %v, want %v", tc.window, j, got[j], w)
			}
		}
		// 3 → 3 is a repeat, not a transition; 3 → 0 is.
		if got := listOf(l, 3); len(got) != 1 || !near(float64(got[0]), 1) {
			t.Errorf("window %d: item 3's transitions %v, want {0: 1}", tc.window, got)
		}
		if items, _ := l.Of(2); len(items) != 0 {
			t.Errorf("window %d: item 2 (never followed) has transitions %v", tc.window, items)
		}
	}
}

func TestNeighborsCosine(t *testing.T) {
	// Users of item 0: {0,1,2}; of item 1: {0,1}; of item 2: {2}. Repeats
	// within a user count once.
	s := seqs([]int32{0, 1, 0}, []int32{1, 0}, []int32{2, 0})
	l, err := Neighbors(context.Background(), s, 3, BuildOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	got := listOf(l, 0)
	want := map[int32]float64{1: 2 / math.Sqrt(3*2), 2: 1 / math.Sqrt(3*1)}
	if len(got) != 2 || !near(float64(got[1]), want[1]) || !near(float64(got[2]), want[2]) {
		t.Errorf("item 0's neighbours %v, want %v", got, want)
	}
	if items, _ := l.Of(0); items[0] != 1 {
		t.Errorf("item 0's best neighbour is %d, want 1 (cosine %.3f > %.3f)", items[0], want[1], want[2])
	}
	if got := listOf(l, 1); len(got) != 1 || got[2] != 0 {
		t.Errorf("item 1's neighbours %v, want only item 0", got)
	}
}

func TestListsAreBounded(t *testing.T) {
	var users [][]int32
	for u := range 30 {
		users = append(users, []int32{0, int32(1 + u%20)})
	}
	l, err := Transitions(context.Background(), seqs(users...), 21, BuildOptions{Transitions: 5, Neighbors: 5})
	if err != nil {
		t.Fatal(err)
	}
	items, ws := l.Of(0)
	if len(items) != 5 {
		t.Fatalf("item 0 keeps %d transitions, want 5", len(items))
	}
	if !slices.IsSortedFunc(ws, func(a, b float32) int { return int(math.Copysign(1, float64(b-a))) }) {
		t.Errorf("weights %v are not heaviest first", ws)
	}
	if _, err := Transitions(context.Background(), seqs([]int32{0, 5}), 3, BuildOptions{}); err == nil {
		t.Error("an item outside the catalogue was accepted")
	}
	if _, err := Neighbors(context.Background(), seqs([]int32{0}), 1, BuildOptions{Neighbors: MaxListLen + 1}); err == nil {
		t.Error("a list longer than MaxListLen was accepted")
	}
}

// testBlend builds a blend over a random 40-item model with lists from a
// few sequences.
func testBlend(t *testing.T, p Params) (*mf.Model, *Blend) {
	t.Helper()
	m := mftest.Random(t, 40, 8, 3)
	var users [][]int32
	for u := range 60 {
		users = append(users, []int32{int32(u % 40), int32((u*7 + 1) % 40), int32((u*3 + 2) % 40), int32((u + 5) % 40)})
	}
	s := seqs(users...)
	nb, err := Neighbors(context.Background(), s, 40, BuildOptions{Neighbors: 6})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Transitions(context.Background(), s, 40, BuildOptions{Transitions: 6})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(m, nb, tr, p)
	if err != nil {
		t.Fatal(err)
	}
	return m, b
}

func weighted(nw, tw, rec float32) Params {
	p := DefaultParams()
	p.Neighbor, p.Transition, p.Recency = nw, tw, rec
	return p
}

// score returns b's score of every item for a user with the given recent
// items (weights 1).
func score(t *testing.T, m *mf.Model, b *Blend, recent []int32) []float32 {
	t.Helper()
	w := make([]float64, len(recent))
	for k := range w {
		w[k] = 1
	}
	b.RecencyWeights(w)
	var ws mf.Workspace
	x, err := m.FoldIn(&ws, recent, w)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, m.NumItems())
	m.Scores(x, out)
	var s Scratch
	b.Prepare(&s, x, recent)
	b.Finish(&s, out)
	for j := range out { // Score agrees with Finish
		if got := b.Score(&s, int32(j), m.Score(x, int32(j))); got != out[j] {
			t.Fatalf("Score(%d) = %v, Finish %v", j, got, out[j])
		}
	}
	s.Release()
	return out
}

func TestMFTermIsStandardized(t *testing.T) {
	m, b := testBlend(t, weighted(0, 0, 0))
	out := score(t, m, b, []int32{3, 9, 17})
	var sum, sq float64
	for _, v := range out {
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	n := float64(len(out))
	if mean, sd := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n)); math.Abs(mean) > 1e-4 || math.Abs(sd-1) > 1e-3 {
		t.Errorf("MF term over all items: mean %v, sd %v; want 0 and 1", mean, sd)
	}
}

func TestRanksMatchFullScoring(t *testing.T) {
	m, probe := testBlend(t, weighted(1, 1, 0))
	recent := []int32{5, 11, 2}
	known := []int32{2, 5, 11}
	grid := []Weights{{0, 0}, {0.5, 0}, {0, 2}, {1, 1}, {4, 0.25}}
	w := []float64{1, 1, 1}
	var ws mf.Workspace
	x, err := m.FoldIn(&ws, recent, w)
	if err != nil {
		t.Fatal(err)
	}
	mfs := make([]float32, m.NumItems())
	m.Scores(x, mfs)
	var s Scratch
	probe.Prepare(&s, x, recent)
	sorted := slices.Clone(mfs)
	slices.Sort(sorted)
	// Only the top scores: ranks below k exact, the others k or more.
	const k = 3
	top, _ := TopScores(nil, mfs, k+len(s.Touched())+len(known)+1, topk.New(1), nil)
	if want := sorted[len(sorted)-len(top):]; len(top) >= len(sorted) || !slices.Equal(top, want) {
		t.Fatalf("top scores %v, want the last %d of %v", top, len(top), sorted)
	}
	ranks := make([]int, len(grid))
	topRanks := make([]int, len(grid))
	for target := int32(0); target < int32(m.NumItems()); target++ {
		if slices.Contains(known, target) {
			continue
		}
		probe.Ranks(&s, mfs, sorted, known, target, grid, ranks)
		probe.Ranks(&s, mfs, top, known, target, grid, topRanks)
		for g := range grid {
			if ranks[g] < k && topRanks[g] != ranks[g] || ranks[g] >= k && topRanks[g] < k {
				t.Fatalf("target %d, weights %+v: rank %d from the top scores, %d from all", target, grid[g], topRanks[g], ranks[g])
			}
		}
		for g, wt := range grid {
			ms, off, ns, ts := s.coefficients(wt.Neighbor, wt.Transition)
			sc := func(j int32) float64 {
				return float64(mfs[j])*ms + off + ns*float64(s.nb[j]) + ts*float64(s.tr[j])
			}
			want := 0
			for j := int32(0); j < int32(m.NumItems()); j++ {
				if j != target && !slices.Contains(known, j) && sc(j) >= sc(target) {
					want++
				}
			}
			if ranks[g] != want {
				t.Fatalf("target %d, weights %+v: rank %d, want %d", target, wt, ranks[g], want)
			}
		}
	}
	s.Release()
}

func TestSectionsRoundTrip(t *testing.T) {
	for _, p := range []Params{weighted(0.5, 2, 1), weighted(0, 1, 0), weighted(1, 0, 4)} {
		m, b := testBlend(t, p)
		if p.Neighbor == 0 {
			b.neighbors = nil
		}
		if p.Transition == 0 {
			b.transitions = nil
		}
		withB, err := m.WithSections(b.Sections()...)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := mf.Write(&buf, withB); err != nil {
			t.Fatal(err)
		}
		read, err := mf.Read(&buf)
		if err != nil {
			t.Fatal(err)
		}
		got, err := FromModel(read)
		if err != nil {
			t.Fatal(err)
		}
		if got.Params() != p {
			t.Errorf("params %+v, want %+v", got.Params(), p)
		}
		for _, c := range []struct{ got, want *Lists }{{got.neighbors, b.neighbors}, {got.transitions, b.transitions}} {
			if (c.got == nil) != (c.want == nil) || c.want != nil && (!slices.Equal(c.got.Ptr, c.want.Ptr) ||
				!slices.Equal(c.got.Item, c.want.Item) || !slices.Equal(c.got.Weight, c.want.Weight)) {
				t.Errorf("params %+v: lists differ after the round trip", p)
			}
		}
		recent := []int32{7, 1, 30, 12}
		if a, b := score(t, m, b, recent), score(t, read, got, recent); !slices.Equal(a, b) {
			t.Errorf("params %+v: scores differ after the round trip", p)
		}
	}
	if _, err := FromModel(mftest.Random(t, 5, 4, 1)); !errors.Is(err, ErrNoBlend) {
		t.Errorf("a model without a blend: %v, want ErrNoBlend", err)
	}
}

func TestFromModelRefusesDamagedSections(t *testing.T) {
	m, b := testBlend(t, weighted(1, 1, 1))
	secs := b.Sections()
	find := func(kind string) mf.Section {
		for _, s := range secs {
			if s.Kind == kind {
				return s
			}
		}
		t.Fatalf("no %s section", kind)
		return mf.Section{}
	}
	params, lists := find(KindBlend), find(KindTransitions)
	// Item 0's list starts at byte 8 (item count, then item 0's length).
	n0 := binary.LittleEndian.Uint32(lists.Data[4:])
	if n0 < 2 {
		t.Fatalf("item 0 has %d transitions, the cases need 2", n0)
	}
	edit := func(s mf.Section, f func(d []byte) []byte) mf.Section {
		s.Data = f(slices.Clone(s.Data))
		return s
	}
	put := func(off int, v uint32) func([]byte) []byte {
		return func(d []byte) []byte { binary.LittleEndian.PutUint32(d[off:], v); return d }
	}
	nan := math.Float32bits(float32(math.NaN()))
	for _, tc := range []struct {
		name string
		sec  mf.Section
	}{
		{"params truncated", edit(params, func(d []byte) []byte { return d[:20] })},
		{"params version", mf.Section{Kind: KindBlend, Version: 9, Data: params.Data}},
		{"negative weight", edit(params, put(0, math.Float32bits(-1)))},
		{"NaN transition weight", edit(params, put(4, nan))},
		{"recency decay above 1", edit(params, put(12, math.Float32bits(1.5)))},
		{"neighbour depth 0", edit(params, put(16, 0))},
		{"transition depth too deep", edit(params, put(24, MaxLast+1))},
		{"lists version", mf.Section{Kind: KindTransitions, Version: 2, Data: lists.Data}},
		{"lists for another catalogue", edit(lists, put(0, 41))},
		{"lists truncated", edit(lists, func(d []byte) []byte { return d[:len(d)-3] })},
		{"bytes after the lists", edit(lists, func(d []byte) []byte { return append(d, 0) })},
		{"list too long", edit(lists, put(4, MaxListLen+1))},
		{"item out of range", edit(lists, put(8, 40))},
		{"item lists itself", edit(lists, put(8, 0))},
		{"item listed twice", edit(lists, func(d []byte) []byte { copy(d[16:20], d[8:12]); return d })},
		{"NaN weight", edit(lists, put(12, nan))},
		{"zero weight", edit(lists, put(12, 0))},
		{"empty payload", mf.Section{Kind: KindNeighbors, Version: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dm, err := m.WithSections(append(slices.Clone(secs), tc.sec)...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := FromModel(dm); !errors.Is(err, ErrCorrupt) {
				t.Errorf("FromModel: %v, want ErrCorrupt", err)
			}
		})
	}
	t.Run("weight without its lists", func(t *testing.T) {
		only, err := m.WithSections(params)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := FromModel(only); !errors.Is(err, ErrCorrupt) {
			t.Errorf("FromModel: %v, want ErrCorrupt", err)
		}
	})
}

func TestRecencyWeights(t *testing.T) {
	w := []float64{2, 2, 2, 2}
	p := weighted(0, 0, 3)
	p.RecencyDecay = 0.5
	p.RecencyWeights(w)
	want := []float64{2 * 4, 2 * 2.5, 2 * 1.75, 2 * 1.375}
	if !slices.Equal(w, want) {
		t.Errorf("weights %v, want %v", w, want)
	}
}

func TestRecentKeepsLatestPosition(t *testing.T) {
	seen := make([]bool, 5)
	got := Recent(nil, []int32{1, 2, 1, 3, 2}, seen)
	if want := []int32{2, 3, 1}; !slices.Equal(got, want) {
		t.Errorf("Recent = %v, want %v", got, want)
	}
	if slices.Contains(seen, true) {
		t.Error("Recent left seen marks behind")
	}
}
