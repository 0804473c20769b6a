package recommend

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"math"
	"reflect"
	"slices"
	"testing"
)

// The similar-items fallback ranks by the cosine similarity summed over the
// cart (computed as one product with the sum of the cart's unit vectors),
// exactly as a brute-force sum of pairwise cosines does.
func TestCartSimilarIsTheSummedCosine(t *testing.T) {
	const n, f = 300, 8
	m := benchModel(t, n, f)
	eng, err := New(Config{}, staticProfiles{}, nil, NewPopular(noPopular{}, 10, slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	eng.SetModel(m)
	cart := []string{m.ItemID(3), m.ItemID(77), m.ItemID(150)}
	res, err := eng.BoughtTogether(context.Background(), BoughtRequest{ItemIDs: cart, Count: 10})
	if err != nil {
		t.Fatal(err)
	}

	cosine := func(a, b int32) float64 {
		var dot float64
		for k, v := range m.Vector(a) {
			dot += float64(v) * float64(m.Vector(b)[k])
		}
		return dot / float64(m.Norm(a)) / float64(m.Norm(b))
	}
	type scored struct {
		row   int32
		score float64
	}
	var all []scored
	for j := range int32(n) {
		if slices.Contains(cart, m.ItemID(j)) {
			continue
		}
		s := 0.0
		for _, c := range cart {
			r, _ := m.Index(c)
			s += cosine(j, r)
		}
		all = append(all, scored{j, s})
	}
	slices.SortFunc(all, func(x, y scored) int { return cmp.Compare(y.score, x.score) })
	if res.Source != SourceSimilar || len(res.Items) != 10 {
		t.Fatalf("source %v with %d items, want similar with 10", res.Source, len(res.Items))
	}
	for i, it := range res.Items {
		want := all[i]
		if it.ItemID != m.ItemID(want.row) || math.Abs(float64(it.Score)-want.score) > 1e-4 {
			t.Errorf("item %d = %s (%v), want %s (%v)", i, it.ItemID, it.Score, m.ItemID(want.row), want.score)
		}
		// The reason names the cart item with the largest term.
		best := ""
		bestSim := math.Inf(-1)
		for _, c := range cart {
			r, _ := m.Index(c)
			if s := cosine(want.row, r); s > bestSim {
				best, bestSim = c, s
			}
		}
		if !reflect.DeepEqual(it.Reason, Reason{Kind: ReasonSimilar, ItemID: best}) {
			t.Errorf("item %d reason %+v, want similar to %s", i, it.Reason, best)
		}
	}
}
