package mf

import (
	"strconv"
	"testing"
)

// BenchmarkFoldInAndContributions: one fold-in of a 100-item profile, and
// the exact decomposition of one item's score over that profile (what an
// explanation costs per returned item), at 64 factors.
func BenchmarkFoldInAndContributions(b *testing.B) {
	m := randomModel(b, 10_000, 64, 5)
	rows := make([]int32, 100)
	w := make([]float64, 100)
	for i := range rows {
		rows[i], w[i] = int32(i*97), 1+float64(i%5)
	}
	ws := &Workspace{}
	out := make([]float64, len(rows))
	b.Run("foldin/profile="+strconv.Itoa(len(rows)), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.FoldIn(ws, rows, w); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("contributions/profile="+strconv.Itoa(len(rows)), func(b *testing.B) {
		if _, err := m.FoldIn(ws, rows, w); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := m.Contributions(ws, rows, w, 4242, out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
