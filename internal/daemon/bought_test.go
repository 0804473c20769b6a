package daemon_test

import (
	"context"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/cooccur"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/retrain"
	"github.com/recsys-dev/recsys/internal/synth"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// The whole path: the retraining job computes the lists from a generated
// shop and publishes them with the model; recsysd answers BoughtTogether
// from them (on a single Redis and on a cluster alike).
func TestBoughtTogetherFromTheJob(t *testing.T) {
	r := start(t)
	ctx := context.Background()
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var evs []event.Event
	if err := synth.Generate(ctx, synth.Config{Users: 400, Items: 200, Events: 20000, Seed: 5,
		Start: end.Add(-30 * 24 * time.Hour), End: end}, func(e event.Event) error {
		evs = append(evs, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	lists, err := cooccur.NewStore(r.rdb, r.prefix)
	if err != nil {
		t.Fatal(err)
	}
	out, err := retrain.Run(ctx, retrain.Config{
		Hyper: mf.Hyperparameters{Factors: 8, Iterations: 5, Regularization: 0.05, Alpha: 10, Seed: 1},
		AsOf:  end, Now: func() time.Time { return end }, SkipBaselines: true, Lists: lists,
	}, func(_ context.Context, fn func(event.Event) error) error {
		for _, e := range evs {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}, nil, r.reg)
	if err != nil {
		t.Fatal(err)
	}
	if out.Lists == 0 {
		t.Fatal("the job wrote no lists")
	}
	eventually(t, "the published model", func() bool { return r.servingVersion(t) == out.Versions[0].Name() })

	// The item with the longest list, and what is stored for it.
	c, err := cooccur.NewCounter(cooccur.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		c.Add(e)
	}
	var longest cooccur.List
	for _, l := range c.Lists() {
		if len(l.Entries) > len(longest.Entries) {
			longest = l
		}
	}
	if len(longest.Entries) < 3 {
		t.Fatalf("the longest list has %d entries; the generated shop has too few baskets", len(longest.Entries))
	}
	res, err := r.rec.BoughtTogether(ctx, &recsysv1.BoughtTogetherRequest{ItemIds: []string{longest.ItemID}, Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetSource() != recsysv1.Source_SOURCE_BOUGHT_TOGETHER || res.GetModelVersion() != out.Versions[0].Name() {
		t.Errorf("source %v, model %q; want BOUGHT_TOGETHER, %s", res.GetSource(), res.GetModelVersion(), out.Versions[0].Name())
	}
	for i, it := range res.GetItems() {
		if want := longest.Entries[i]; it.GetItemId() != want.ItemID || it.GetScore() != want.Score ||
			it.GetReason().GetItemId() != longest.ItemID {
			t.Errorf("item %d = %s (%v, reason %v), want %s (%v) bought with %s",
				i, it.GetItemId(), it.GetScore(), it.GetReason(), want.ItemID, want.Score, longest.ItemID)
		}
	}
}
