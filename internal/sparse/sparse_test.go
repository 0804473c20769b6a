package sparse

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

// dense expands m for comparison with a naively computed expectation.
func dense(m *Matrix) [][]float64 {
	d := make([][]float64, m.Rows)
	for r := range d {
		d[r] = make([]float64, m.Cols)
		cols, vals := m.Row(r)
		for k, c := range cols {
			d[r][c] = float64(vals[k])
		}
	}
	return d
}

func TestFromTriplesSumsRepeatsAndSortsRows(t *testing.T) {
	tr := &Triples{}
	// (row, col, val), unsorted with repeats.
	for _, e := range [][3]float32{{1, 3, 1}, {0, 2, 2}, {1, 0, 4}, {1, 3, 0.5}, {0, 2, 1}, {2, 1, 7}, {1, 1, 1}} {
		tr.Append(int32(e[0]), int32(e[1]), e[2])
	}
	m, err := FromTriples(4, 4, tr, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	wantIndptr := []int64{0, 1, 4, 5, 5}
	wantIndices := []int32{2, 0, 1, 3, 1}
	wantData := []float32{3, 4, 1, 1.5, 7}
	if !slices.Equal(m.Indptr, wantIndptr) || !slices.Equal(m.Indices, wantIndices) || !slices.Equal(m.Data, wantData) {
		t.Errorf("got indptr %v indices %v data %v, want %v %v %v", m.Indptr, m.Indices, m.Data, wantIndptr, wantIndices, wantData)
	}
	if got, want := m.NNZ(), 5; got != want {
		t.Errorf("NNZ = %d, want %d", got, want)
	}
	if got := m.RowLen(3); got != 0 {
		t.Errorf("RowLen(3) = %d, want 0", got)
	}
}

func TestFromTriplesRandomMatchesDense(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const rows, cols = 37, 23
	want := make([][]float64, rows)
	for r := range want {
		want[r] = make([]float64, cols)
	}
	tr := &Triples{}
	for range 2000 {
		r, c := int32(rng.IntN(rows)), int32(rng.IntN(cols))
		v := float32(rng.IntN(5) + 1)
		tr.Append(r, c, v)
		want[r][c] += float64(v)
	}
	m, err := FromTriples(rows, cols, tr, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := dense(m); !equalDense(got, want) {
		t.Errorf("matrix differs from the dense sum")
	}
	tt := m.Transpose()
	if err := tt.Validate(); err != nil {
		t.Fatal(err)
	}
	gotT := dense(tt)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			if gotT[c][r] != want[r][c] {
				t.Fatalf("transpose[%d][%d] = %v, want %v", c, r, gotT[c][r], want[r][c])
			}
		}
	}
	if back := tt.Transpose(); !slices.Equal(back.Indptr, m.Indptr) || !slices.Equal(back.Indices, m.Indices) || !slices.Equal(back.Data, m.Data) {
		t.Error("transpose of the transpose differs from the matrix")
	}
}

func equalDense(a, b [][]float64) bool {
	for r := range a {
		for c := range a[r] {
			if math.Abs(a[r][c]-b[r][c]) > 1e-6 {
				return false
			}
		}
	}
	return true
}

func TestFromTriplesRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rows, cols int
		tr         Triples
		rowIDs     []string
		want       string
	}{
		{"row out of range", 2, 2, Triples{Row: []int32{2}, Col: []int32{0}, Val: []float32{1}}, nil, "outside 2×2"},
		{"negative column", 2, 2, Triples{Row: []int32{0}, Col: []int32{-1}, Val: []float32{1}}, nil, "outside 2×2"},
		{"NaN value", 2, 2, Triples{Row: []int32{0}, Col: []int32{1}, Val: []float32{float32(math.NaN())}}, nil, "NaN"},
		{"infinite value", 2, 2, Triples{Row: []int32{0}, Col: []int32{1}, Val: []float32{float32(math.Inf(1))}}, nil, "+Inf"},
		{"overflowing sum", 1, 1, Triples{Row: []int32{0, 0}, Col: []int32{0, 0}, Val: []float32{math.MaxFloat32, math.MaxFloat32}}, nil, "overflows"},
		{"ragged triples", 2, 2, Triples{Row: []int32{0, 1}, Col: []int32{0}, Val: []float32{1}}, nil, "2 rows, 1 columns"},
		{"id table length", 2, 2, Triples{}, []string{"a"}, "1 row ids for 2 rows"},
		{"negative shape", -1, 2, Triples{}, nil, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromTriples(tc.rows, tc.cols, &tc.tr, tc.rowIDs, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestValidateRejectsBrokenMatrix(t *testing.T) {
	good := func() *Matrix {
		return &Matrix{Rows: 2, Cols: 3, Indptr: []int64{0, 2, 3}, Indices: []int32{0, 2, 1}, Data: []float32{1, 2, 3}}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("valid matrix rejected: %v", err)
	}
	for _, tc := range []struct {
		name   string
		damage func(m *Matrix)
	}{
		{"unsorted row", func(m *Matrix) { m.Indices[0], m.Indices[1] = 2, 0 }},
		{"column out of range", func(m *Matrix) { m.Indices[2] = 3 }},
		{"short indptr", func(m *Matrix) { m.Indptr = m.Indptr[:2] }},
		{"decreasing indptr", func(m *Matrix) { m.Indptr[1] = 4 }},
		{"NaN value", func(m *Matrix) { m.Data[1] = float32(math.NaN()) }},
		{"data length", func(m *Matrix) { m.Data = m.Data[:2] }},
		{"id tables", func(m *Matrix) { m.ColIDs = []string{"a"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := good()
			tc.damage(m)
			if err := m.Validate(); err == nil {
				t.Error("broken matrix accepted")
			}
		})
	}
}

func TestBuilderAppliesSharedWeighting(t *testing.T) {
	asOf := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	w := event.DefaultWeighting()
	events := []event.Event{
		{ID: "1", UserID: "alice", ItemID: "shoe", Type: event.View, Time: asOf},
		{ID: "2", UserID: "bob", ItemID: "hat", Type: event.Purchase, Quantity: 2, Time: asOf.Add(-30 * 24 * time.Hour)},
		{ID: "3", UserID: "alice", ItemID: "hat", Type: event.AddToCart, Time: asOf},
		{ID: "4", UserID: "alice", ItemID: "shoe", Type: event.Purchase, Time: asOf.Add(-60 * 24 * time.Hour)},
		{ID: "5", UserID: "carol", ItemID: "sock", Type: event.Custom, Weight: 2.5, Time: asOf},
	}
	b := NewBuilder(w, asOf)
	b.Grow(len(events)) // only capacity; must not change the result
	b.Grow(-1)
	for _, e := range events {
		if err := b.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.RowIDs, []string{"alice", "bob", "carol"}; !slices.Equal(got, want) {
		t.Errorf("row ids %v, want %v (first appearance)", got, want)
	}
	if got, want := m.ColIDs, []string{"shoe", "hat", "sock"}; !slices.Equal(got, want) {
		t.Errorf("column ids %v, want %v (first appearance)", got, want)
	}
	// Expected strengths from the shared definition, summed per pair.
	want := map[[2]string]float64{}
	for _, e := range events {
		want[[2]string{e.UserID, e.ItemID}] += w.Of(e, asOf)
	}
	// Spot-check the definition itself: a 60-day-old purchase at a 30-day
	// half-life counts a quarter of 5.
	if got := want[[2]string{"alice", "shoe"}]; math.Abs(got-(1+5.0/4)) > 1e-12 {
		t.Fatalf("alice/shoe strength %v, want 2.25", got)
	}
	if got := m.NNZ(); got != len(want) {
		t.Errorf("NNZ = %d, want %d", got, len(want))
	}
	for r := 0; r < m.Rows; r++ {
		cols, vals := m.Row(r)
		for k, c := range cols {
			key := [2]string{m.RowIDs[r], m.ColIDs[c]}
			if math.Abs(float64(vals[k])-want[key]) > 1e-6 {
				t.Errorf("%v = %v, want %v", key, vals[k], want[key])
			}
		}
	}
}

func TestBuilderRejectsBadEventsAndCountsZeroWeights(t *testing.T) {
	asOf := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	w := event.DefaultWeighting()
	w.View = 0 // views switched off
	b := NewBuilder(w, asOf)
	for _, tc := range []struct {
		name string
		e    event.Event
		want string
	}{
		{"no user", event.Event{ID: "a", ItemID: "x", Type: event.View}, "empty user id"},
		{"no item", event.Event{ID: "b", UserID: "u", Type: event.View}, "empty item id"},
		{"unknown type", event.Event{ID: "c", UserID: "u", ItemID: "x", Type: event.Wishlist + 1}, "unknown event type"},
		{"unspecified type", event.Event{ID: "d", UserID: "u", ItemID: "x"}, "unknown event type"},
		{"long id", event.Event{ID: "e", UserID: strings.Repeat("u", MaxIDLength+1), ItemID: "x", Type: event.View}, "at most 256"},
		{"invalid UTF-8", event.Event{ID: "e", UserID: "u", ItemID: "x\xff", Type: event.View}, "not valid UTF-8"},
		{"NaN custom weight", event.Event{ID: "f", UserID: "u", ItemID: "x", Type: event.Custom, Weight: float32(math.NaN())}, "finite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := b.Add(tc.e)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if err := b.Add(event.Event{ID: "g", UserID: "u", ItemID: "x", Type: event.View, Time: asOf}); err != nil {
		t.Fatal(err)
	}
	// A purchase 30 years old has decayed below float32's smallest value
	// (30-day half-life): it weighs 0 and is dropped, not stored as a 0.
	if err := b.Add(event.Event{ID: "h", UserID: "u", ItemID: "x", Type: event.Purchase, Time: asOf.AddDate(-30, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	if got := b.Dropped(); got != 2 {
		t.Errorf("Dropped = %d, want 2", got)
	}
	if got := b.Events(); got != 0 {
		t.Errorf("Events = %d, want 0", got)
	}
	m, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != 0 || m.Cols != 0 || m.NNZ() != 0 {
		t.Errorf("got %d×%d with %d entries, want an empty matrix", m.Rows, m.Cols, m.NNZ())
	}
}

func TestIndexInternsInOrder(t *testing.T) {
	var x Index
	for _, id := range []string{"b", "a", "b", "c", "a"} {
		x.Intern(id)
	}
	if got, want := x.IDs(), []string{"b", "a", "c"}; !slices.Equal(got, want) {
		t.Errorf("ids %v, want %v", got, want)
	}
	if i, ok := x.Lookup("c"); !ok || i != 2 {
		t.Errorf("Lookup(c) = %d, %v, want 2, true", i, ok)
	}
	if _, ok := x.Lookup("z"); ok {
		t.Error("Lookup(z) found an id never interned")
	}
}

func TestErrBadTripleIsWrapped(t *testing.T) {
	_, err := FromTriples(1, 1, &Triples{Row: []int32{0}, Col: []int32{5}, Val: []float32{1}}, nil, nil)
	if !errors.Is(err, ErrBadTriple) {
		t.Errorf("got %v, want ErrBadTriple", err)
	}
}
