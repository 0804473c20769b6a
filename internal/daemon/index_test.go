package daemon_test

import (
	"context"
	"testing"
	"time"

	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"

	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/itemindex"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/retrain"
	"github.com/recsys-dev/recsys/internal/synth"
	"github.com/recsys-dev/recsys/internal/topk"
)

// The whole path with the partitioned index forced (--index-min-items 0):
// the job publishes the model with its cells, the server loads them and
// SimilarItems searches them over gRPC; probing every cell, the answer is
// the exact cosine ranking.
func TestSimilarItemsThroughTheForcedIndex(t *testing.T) {
	r := start(t, func(c *daemon.Config) { c.IndexMinItems, c.IndexProbe = -1, 1<<20 })
	ctx := context.Background()
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var evs []event.Event
	if err := synth.Generate(ctx, synth.Config{Users: 300, Items: 400, Events: 15000, Seed: 7,
		Start: end.Add(-30 * 24 * time.Hour), End: end}, func(e event.Event) error {
		evs = append(evs, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out, err := retrain.Run(ctx, retrain.Config{
		Hyper: mf.Hyperparameters{Factors: 8, Iterations: 5, Regularization: 0.05, Alpha: 10, Seed: 1},
		AsOf:  end, Now: func() time.Time { return end }, SkipBaselines: true,
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
	m := out.Model
	if _, ok := m.Section(itemindex.SectionKind); !ok {
		t.Fatal("the published model has no ivf section")
	}
	eventually(t, "the published model", func() bool { return r.servingVersion(t) == out.Versions[0].Name() })

	scores := make([]float32, m.NumItems())
	for _, q := range []int32{0, 17, int32(m.NumItems() - 1)} {
		res, err := r.rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: m.ItemID(q), Count: 10})
		if err != nil {
			t.Fatal(err)
		}
		m.Cosine(q, scores)
		h := topk.New(10)
		for i, s := range scores {
			if int32(i) != q {
				h.Push(int32(i), s)
			}
		}
		want := h.Sorted(nil)
		got := res.GetItems()
		if len(got) != len(want) || res.GetSource() != recsysv1.Source_SOURCE_SIMILAR {
			t.Fatalf("item %d: %d items from %v, want %d similar", q, len(got), res.GetSource(), len(want))
		}
		for i, w := range want {
			if got[i].GetItemId() != m.ItemID(w.Row) || got[i].GetScore() != w.Score {
				t.Errorf("item %d rank %d: got %s %v, want %s %v", q, i, got[i].GetItemId(), got[i].GetScore(), m.ItemID(w.Row), w.Score)
			}
		}
	}
}
