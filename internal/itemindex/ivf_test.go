package itemindex

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/topk"
)

// plantedFactors draws items around `clusters` centres (the structure a
// trained model has: groups of similar items), with spread norms.
func plantedFactors(rng *rand.Rand, n, f, clusters int) []float32 {
	centres := randomFactors(rng, clusters, f, 0)
	y := make([]float32, n*f)
	for i := range n {
		c := rng.IntN(clusters)
		s := float32(0.5 + rng.Float64())
		for j := range f {
			y[i*f+j] = s * (centres[c*f+j] + float32(rng.NormFloat64()*0.02))
		}
	}
	return y
}

// Probing every cell, the cells' bounds only skip cells that cannot hold a
// better row: the answer is the exact scan's.
func TestIVFWithEveryCellIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	m := newModel(t, 24, plantedFactors(rng, 2000, 24, 30))
	ix, err := BuildIVF(m, IVFOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if ix.Cells() < 2 {
		t.Fatalf("%d cells", ix.Cells())
	}
	checkExact(t, ix, m, rng, 2000, false)
	checkExact(t, ix, m, rng, 2000, true)
}

// Recall@20 against the exact scan with the default probe, on planted data.
func TestIVFRecallOnPlantedData(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	const n, f, k = 20000, 32, 20
	m := newModel(t, f, plantedFactors(rng, n, f, 100))
	ix, err := BuildIVF(m, IVFOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var s Search
	hits, total := 0, 0
	for range 50 {
		x := m.Vector(int32(rng.IntN(n))) // users near item groups
		if err := ix.Start(&s, Query{X: x}); err != nil {
			t.Fatal(err)
		}
		got := s.Top(k, nil, nil, nil)
		want := bruteTop(m, x, -1, k, nil, nil)
		for _, w := range want {
			total++
			if slices.ContainsFunc(got, func(g topk.Entry) bool { return g == w }) {
				hits++
			}
		}
	}
	if recall := float64(hits) / float64(total); recall < 0.95 {
		t.Errorf("recall@%d = %.3f, want >= 0.95 (probed %d of %d cells)", k, recall, ix.DefaultProbe(), ix.Cells())
	}
}

// A filter that rejects nearly every row makes the search probe more cells
// until it has k rows.
func TestIVFProbesMoreWhenTheFilterRejects(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	m := newModel(t, 16, plantedFactors(rng, 5000, 16, 40))
	ix, err := BuildIVF(m, IVFOptions{Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	admit := func(r int32) bool { return r%97 == 0 } // 52 rows pass
	var s Search
	if err := ix.Start(&s, Query{X: m.Vector(3), Probe: 1}); err != nil {
		t.Fatal(err)
	}
	got := s.Top(50, nil, admit, nil)
	if len(got) != 50 {
		t.Fatalf("got %d rows, want 50", len(got))
	}
	for _, e := range got {
		if !admit(e.Row) {
			t.Errorf("row %d does not pass the filter", e.Row)
		}
	}
}

func TestIVFSectionRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	m := newModel(t, 8, plantedFactors(rng, 300, 8, 5))
	// More cells than clusters: some stay empty or nearly so.
	ix, err := BuildIVF(m, IVFOptions{Cells: 40, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	sec, ok := ix.Section()
	if !ok {
		t.Fatal("no section")
	}
	back, err := FromSection(m, sec)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.rows, ix.rows) || !slices.Equal(back.starts, ix.starts) || !slices.Equal(back.codes, ix.codes) {
		t.Error("the decoded index differs")
	}
	checkExact(t, back, m, rng, 300, false)
	if _, ok := Flat(m).Section(); ok {
		t.Error("a flat index has a section")
	}

	bad := func(edit func([]byte) []byte) mf.Section {
		return mf.Section{Kind: SectionKind, Version: SectionVersion, Data: edit(slices.Clone(sec.Data))}
	}
	for name, s := range map[string]mf.Section{
		"version":   {Kind: SectionKind, Version: 9, Data: sec.Data},
		"truncated": bad(func(b []byte) []byte { return b[:len(b)-4] }),
		"items":     bad(func(b []byte) []byte { b[8]++; return b }),
		"row twice": bad(func(b []byte) []byte { copy(b[12+4*41:], b[12+4*41+4:12+4*41+8]); return b }),
		"nan":       bad(func(b []byte) []byte { copy(b[len(b)-4:], []byte{0, 0, 0xc0, 0x7f}); return b }),
	} {
		if _, err := FromSection(m, s); !errors.Is(err, ErrSection) {
			t.Errorf("%s: got %v, want ErrSection", name, err)
		}
	}
	// A model without the section (an old artifact) gets one built.
	built, err := ForModel(m)
	if err != nil || built.Cells() < 2 {
		t.Fatalf("ForModel: %v, %v cells", err, built)
	}
}

// shopFactors are the serving benchmark's factors: category centres with
// noise a third of their spread, so cells overlap as a trained model's do.
func shopFactors(rng *rand.Rand, n, f, clusters int) []float32 {
	centres := make([]float64, clusters*f)
	for i := range centres {
		centres[i] = rng.NormFloat64() * 0.3
	}
	y := make([]float32, n*f)
	for i := range n {
		c := i % clusters
		for j := range f {
			y[i*f+j] = float32(centres[c*f+j] + rng.NormFloat64()*0.1)
		}
	}
	return y
}

// The adaptive probe: on queries between two item groups (a user with two
// interests, which the first cells do not cover), going on past the probe
// through the cells whose likely bound reaches the k-th score finds more
// of the exact top k than stopping at the probe, and never scans more than
// ExtendFactor × the probe's cells (no filter here).
func TestIVFAdaptiveProbe(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	const n, f, k = 20000, 32, 20
	m := newModel(t, f, shopFactors(rng, n, f, 100))
	ix, err := BuildIVF(m, IVFOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	probe := 2 // of 141 cells: the two nearest groups, not always the right ones
	recall := func(noExtend bool) float64 {
		qrng := rand.New(rand.NewPCG(7, 7))
		var s Search
		x := make([]float32, f)
		hits, total := 0, 0
		for range 100 {
			a, b := m.Vector(int32(qrng.IntN(n))), m.Vector(int32(qrng.IntN(n)))
			for j := range x {
				x[j] = a[j] + b[j]
			}
			if err := ix.Start(&s, Query{X: x, Probe: probe, NoExtend: noExtend}); err != nil {
				t.Fatal(err)
			}
			got := s.Top(k, nil, nil, nil)
			if limit := min(ix.Cells(), ExtendFactor*probe); s.nScan > limit {
				t.Fatalf("scanned %d cells, the adaptive cap is %d", s.nScan, limit)
			}
			if noExtend && s.nScan > probe {
				t.Fatalf("scanned %d cells without the extension, probe %d", s.nScan, probe)
			}
			for _, w := range bruteTop(m, x, -1, k, nil, nil) {
				total++
				if slices.Contains(got, w) {
					hits++
				}
			}
		}
		return float64(hits) / float64(total)
	}
	fixed, adaptive := recall(true), recall(false)
	t.Logf("recall@%d, probe %d of %d cells: fixed %.3f, adaptive %.3f", k, probe, ix.Cells(), fixed, adaptive)
	if adaptive <= fixed {
		t.Errorf("recall@%d: adaptive %.3f, not above the fixed probe's %.3f", k, adaptive, fixed)
	}
}
