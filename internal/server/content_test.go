package server_test

import (
	"context"
	"slices"
	"testing"

	"github.com/recsys-dev/recsys/internal/content"
	"github.com/recsys-dev/recsys/internal/itemindex"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/recommend"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// contentModel is the planted model with a content map learned from its
// items' brands ("brand-a" for a-items…) and categories ("cat-a"…), and,
// with ivf, the index cells in its "ivf" section.
func contentModel(t *testing.T, ivf bool) *mf.Model {
	t.Helper()
	m := plantedModel(t, "v1")
	mp, err := content.Fit(context.Background(), m, func(id string) (content.Item, bool) {
		c := id[:1]
		return content.Item{Category: "cat-" + c, Brand: "brand-" + c}, true
	}, content.Options{Lambda: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	secs := []mf.Section{mp.Section()}
	if ivf {
		ix, err := itemindex.BuildIVF(m, itemindex.IVFOptions{Cells: 3, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		sec, _ := ix.Section()
		secs = append(secs, sec)
	}
	if m, err = m.WithSections(secs...); err != nil {
		t.Fatal(err)
	}
	return m
}

// A new item with attributes only (brand-b, a category the model never saw;
// or cat-c, no brand) is recommended to users of b-items (c-items) in the
// first request after the upsert, is ranked by RankItems and appears under
// SimilarItems of its peers; a user of a-items does not get it. Through the
// flat index, the partitioned index (the new items are one extra cell) and
// the exact scan.
func TestNewItemPlacedByItsAttributes(t *testing.T) {
	for _, c := range []struct {
		name   string
		ivf    bool
		engine func(*recommend.Config)
	}{
		{"flat index", false, nil},
		{"partitioned index", true, func(c *recommend.Config) { c.IndexMinItems = -1 }},
		{"exact scan", false, func(c *recommend.Config) { c.ExactScan = true }},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnvWith(t, envOptions{engine: c.engine})
			if err := e.engine.SetModel(contentModel(t, c.ivf)); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			now := e.clock.Now()
			items := plantedCatalog(now)
			for _, it := range items {
				it.Brand = "brand-" + it.GetItemId()[:1]
			}
			e.upsert(t, items...)
			e.record(t, ev("ub", "b1", view, now), ev("ub", "b2", view, now), ev("ub", "b3", cart, now))
			e.record(t, ev("uc", "c1", view, now), ev("uc", "c2", view, now))
			e.record(t, ev("ua", "a1", view, now), ev("ua", "a2", view, now))
			recommendIDs := func(user string, count int32) []string {
				t.Helper()
				res := e.recommend(t, &recsysv1.RecommendRequest{UserId: user, Count: count})
				return ids(res.GetItems())
			}
			if got := recommendIDs("ub", 10); slices.Contains(got, "nb") {
				t.Fatalf("recommended %v before nb exists", got)
			}

			e.upsert(t,
				&recsysv1.Item{ItemId: "nb", Category: "gadgets", Brand: "brand-b", Available: true},
				&recsysv1.Item{ItemId: "nc", Category: "cat-c", Available: true})
			got := recommendIDs("ub", 8) // 7 b-items the user has not seen, then nb
			if !slices.Contains(got, "nb") || slices.Contains(got, "nc") {
				t.Errorf("b-user got %v, want nb among them and not nc", got)
			}
			if got := recommendIDs("uc", 9); !slices.Contains(got, "nc") || slices.Contains(got, "nb") {
				t.Errorf("c-user got %v, want nc among them and not nb", got)
			}
			if got := recommendIDs("ua", 8); slices.Contains(got, "nb") || slices.Contains(got, "nc") {
				t.Errorf("a-user got %v, want neither new item", got)
			}

			sim, err := e.rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: "b5", Count: 10})
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(sim.GetItems()); !slices.Contains(got, "nb") || slices.Contains(got, "nc") {
				t.Errorf("items similar to b5: %v, want nb among them and not nc", got)
			}
			sim, err = e.rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: "nb", Count: 3})
			if err != nil {
				t.Fatal(err)
			}
			if sim.GetSource() != recsysv1.Source_SOURCE_SIMILAR || cluster(sim.GetItems()) != "bbb" {
				t.Errorf("items similar to nb: %v (%v), want b-items", ids(sim.GetItems()), sim.GetSource())
			}

			ranked := e.rank(t, &recsysv1.RankItemsRequest{UserId: "ub", ItemIds: []string{"a4", "nc", "nb"}})
			if got := ids(ranked.GetItems()); !slices.Equal(got, []string{"nb", "a4", "nc"}) && !slices.Equal(got, []string{"nb", "nc", "a4"}) {
				t.Errorf("RankItems for the b-user: %v, want nb first", got)
			}
		})
	}
}

// The model reports only its trained items; a model without a content map
// serves new items from popularity and exploration alone.
func TestNoContentMapNoPlacement(t *testing.T) {
	e := newEnv(t, true)
	now := e.clock.Now()
	e.upsert(t, plantedCatalog(now)...)
	e.upsert(t, &recsysv1.Item{ItemId: "nb", Category: "cat-b", Available: true})
	e.record(t, ev("ub", "b1", view, now))
	res := e.recommend(t, &recsysv1.RecommendRequest{UserId: "ub", Count: 9})
	if got := ids(res.GetItems()); slices.Contains(got, "nb") {
		t.Errorf("got %v: nb placed without a content map", got)
	}
	if n := e.engine.Model().NumItems(); n != 30 {
		t.Errorf("serving %d items, want the model's 30", n)
	}
}
