package eval_test

import (
	"context"
	"testing"

	"github.com/recsys-dev/recsys/internal/content"
	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/synth"
)

// On a generated shop (items arrive over time; shoppers prefer categories),
// new items placed by the content map are found (recall@3 of about 25
// candidates) at least twice as often as
// by their category's popularity, and the split keeps new items out of
// training.
func TestColdStartContentBeatsCategoryPopularity(t *testing.T) {
	cfg := synth.Config{Users: 400, Items: 300, Events: 16000, Seed: 3}
	var evs []event.Event
	if err := synth.Generate(context.Background(), cfg, func(e event.Event) error { evs = append(evs, e); return nil }); err != nil {
		t.Fatal(err)
	}
	cat, err := synth.Catalog(cfg)
	if err != nil {
		t.Fatal(err)
	}
	items := map[string]content.Item{}
	for _, it := range cat {
		items[it.ID] = content.Item{Category: it.Category, Price: it.Price}
	}
	res, err := eval.ColdStart(context.Background(), evs, func(id string) (content.Item, bool) { it, ok := items[id]; return it, ok },
		eval.ColdStartOptions{K: 3, Hyper: mf.Hyperparameters{Factors: 16, Iterations: 8, Regularization: 0.05, Alpha: 10, Seed: 1}, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.NewItems < 10 || res.Cases < 20 || res.TrainItems+res.NewItems > len(cat) {
		t.Fatalf("split: %d new items, %d trained, %d test users", res.NewItems, res.TrainItems, res.Cases)
	}
	got := map[string]float64{}
	for _, m := range res.Recall {
		got[m.Name] = m.Recall
	}
	t.Logf("%+v", res)
	if got["content"] < 2*got["category-popularity (global)"] {
		t.Errorf("content recall@3 %.4f, want at least twice category popularity's %.4f", got["content"], got["category-popularity (global)"])
	}
}
