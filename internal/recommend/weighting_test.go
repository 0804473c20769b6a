package recommend

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/profile"
)

// A model that records its training weighting is folded in with it, whatever
// the engine was configured with; a model that does not record one uses the
// engine's.
func TestFoldInUsesTheModelsWeighting(t *testing.T) {
	base := benchModel(t, 300, 8)
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	var p profile.Profile
	for i := range 12 {
		typ := event.View
		if i%3 == 0 {
			typ = event.Purchase
		}
		p.History = append(p.History, profile.Entry{ItemID: base.ItemID(int32(i * 7)), Type: typ, Time: now.Add(-time.Duration(i) * 24 * time.Hour)})
	}
	server := event.DefaultWeighting()
	trained := event.Weighting{View: 4, AddToCart: 1, Purchase: 0.5, HalfLife: 2 * 24 * time.Hour, MaxQuantity: 1}
	info := base.Info()
	info.Weighting = &trained
	recorded, err := mf.New(info, base.ItemIDs(), base.Matrix())
	if err != nil {
		t.Fatal(err)
	}

	answer := func(w event.Weighting, m *mf.Model) []Item {
		t.Helper()
		cat := &staticCatalog{items: map[string]catalog.Item{}, version: 1}
		eng, err := New(Config{Weighting: w, Now: func() time.Time { return now }}, staticProfiles{p}, cat, NewPopular(noPopular{}, 10, quietLog()))
		if err != nil {
			t.Fatal(err)
		}
		eng.SetModel(m)
		res, err := eng.Recommend(context.Background(), Request{UserID: "u", Count: 10})
		if err != nil {
			t.Fatal(err)
		}
		if res.Source != SourcePersonalized {
			t.Fatalf("source %v, want personalized", res.Source)
		}
		return res.Items
	}
	same := func(a, b []Item) bool {
		return slices.EqualFunc(a, b, func(x, y Item) bool { return x.ItemID == y.ItemID && x.Score == y.Score })
	}

	got := answer(server, recorded)
	if want := answer(trained, base); !same(got, want) {
		t.Errorf("server weighting %+v, model trained with %+v:\n got %v\nwant %v (the model's weighting)", server, trained, got, want)
	}
	if unrecorded := answer(server, base); same(got, unrecorded) {
		t.Error("the two weightings give the same answer: the test cannot tell them apart")
	}
}
