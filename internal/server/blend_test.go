package server_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/blend"
	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/topk"
	"github.com/recsys-dev/recsys/internal/traindata"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// blendWorld trains MF and a blend offline on planted walks (each item has
// a successor the walks usually take) and returns the split, the model
// carrying the blend sections, and the offline scorer.
func blendWorld(t *testing.T, w event.Weighting, start time.Time) (*traindata.Split, *mf.Model, *eval.Blend) {
	t.Helper()
	const users, items, length = 120, 40, 7
	rng := rand.New(rand.NewPCG(3, 4))
	succ := rng.Perm(items)
	col := traindata.NewCollector(w, start.Add(time.Hour))
	for u := range users {
		x := rng.IntN(items)
		for k := range length {
			e := event.Event{UserID: "bu" + strconv.Itoa(u), ItemID: "bi" + strconv.Itoa(x), Type: event.View,
				Time: start.Add(time.Duration(k) * time.Minute)}
			if err := col.Add(e); err != nil {
				t.Fatal(err)
			}
			if rng.Float64() < 0.7 {
				x = succ[x]
			} else {
				x = rng.IntN(items)
			}
		}
	}
	split, err := traindata.SplitByTime(col.Data(), traindata.TimeSplit{LastN: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	model, _, err := eval.TrainALS(ctx, split, mf.Hyperparameters{Factors: 6, Regularization: 0.1, Alpha: 2, Iterations: 6, Seed: 1}, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := blend.DefaultParams()
	p.Neighbor, p.Transition, p.Recency = 0.5, 2, 1
	b, err := eval.BuildBlend(ctx, split, model, p, blend.BuildOptions{Neighbors: 10, Transitions: 10})
	if err != nil {
		t.Fatal(err)
	}
	served, err := model.WithSections(b.Sections()...)
	if err != nil {
		t.Fatal(err)
	}
	return split, served, eval.NewBlend("blend", model, b, eval.Sequences(split.Train))
}

// What the server answers from a live profile is what the offline
// evaluation scored: Recommend, BatchRecommend and RankItems give the
// blend's scores (MF fold-in, neighbours, transitions, recency) for a user
// whose events were recorded through the API.
// The blend is served through the index: the flat one (the default below
// --index-min-items) and the partitioned one forced with every cell probed
// give the exact blend's answers; ExactScan scores every item.
func TestServedBlendEqualsOffline(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  func(*recommend.Config)
	}{
		{"flat-index", func(*recommend.Config) {}},
		{"ivf-every-cell", func(c *recommend.Config) { c.IndexMinItems, c.IndexProbe = -1, 1<<20 }},
		{"exact-scan", func(c *recommend.Config) { c.ExactScan = true }},
	} {
		t.Run(c.name, func(t *testing.T) { testServedBlendEqualsOffline(t, c.cfg) })
	}
}

func testServedBlendEqualsOffline(t *testing.T, cfg func(*recommend.Config)) {
	w := event.Weighting{View: 1, AddToCart: 3, Purchase: 5, MaxQuantity: 5} // no decay: the same strengths offline and live
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	start := now.Add(-24 * time.Hour)
	split, model, offline := blendWorld(t, w, start)
	e := newEnvWith(t, envOptions{clock: &clock{t: now}, engine: func(c *recommend.Config) { c.Weighting = w; cfg(c) }})
	if err := e.engine.SetModel(model); err != nil {
		t.Fatal(err)
	}
	n := model.NumItems()
	for _, cs := range split.Cases[:3] {
		user := split.Train.UserIDs[cs.User]
		// Replay the user's training events through the API, in order.
		var evs []*recsysv1.Event
		for k := range split.Train.Len() {
			if split.Train.Row[k] == cs.User {
				evs = append(evs, ev(user, split.Train.ItemIDs[split.Train.Col[k]], view, time.Unix(0, split.Train.Time[k])))
			}
		}
		e.record(t, evs...)

		want := make([]float32, n)
		if err := offline.Scores([]traindata.Case{cs}, want); err != nil {
			t.Fatal(err)
		}
		h := topk.New(10)
		for j, v := range want {
			if _, known := slices.BinarySearch(cs.Known, int32(j)); !known {
				h.Push(int32(j), v)
			}
		}
		var wantIDs []string
		for _, en := range h.Sorted(nil) {
			wantIDs = append(wantIDs, model.ItemID(en.Row))
		}
		check := func(rpc string, items []*recsysv1.ScoredItem) {
			t.Helper()
			for _, it := range items {
				row, ok := model.Index(it.GetItemId())
				if !ok {
					t.Fatalf("%s for %s: unknown item %q", rpc, user, it.GetItemId())
				}
				if got, want := it.GetScore(), want[row]; math.Abs(float64(got-want)) > 1e-4*max(1, math.Abs(float64(want))) {
					t.Errorf("%s for %s: %s scores %v, offline %v", rpc, user, it.GetItemId(), got, want)
				}
			}
		}

		rec := e.recommend(t, &recsysv1.RecommendRequest{UserId: user, Count: 10})
		if got := ids(rec.GetItems()); !slices.Equal(got, wantIDs) {
			t.Errorf("Recommend for %s: %v, offline top 10 %v", user, got, wantIDs)
		}
		check("Recommend", rec.GetItems())

		batch := e.mustBatch(t, &recsysv1.BatchRecommendRequest{UserIds: []string{user}, Count: 10})
		if len(batch) != 1 || !slices.Equal(ids(batch[0].GetItems()), wantIDs) {
			t.Errorf("BatchRecommend for %s: %v, offline top 10 %v", user, batch, wantIDs)
		} else {
			check("BatchRecommend", batch[0].GetItems())
		}

		candidates := slices.Clone(wantIDs[5:])
		candidates = append(candidates, model.ItemID(cs.Known[0]), wantIDs[0])
		ranked := e.rank(t, &recsysv1.RankItemsRequest{UserId: user, ItemIds: candidates})
		check("RankItems", ranked.GetItems())
	}
}

// A model whose blend sections are damaged is refused and the previous
// model keeps serving.
func TestDamagedBlendIsRefused(t *testing.T) {
	w := event.DefaultWeighting()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	_, model, _ := blendWorld(t, w, now.Add(-24*time.Hour))
	e := newEnvWith(t, envOptions{model: true, clock: &clock{t: now}})
	s, _ := model.Section(blend.KindTransitions)
	s.Data = s.Data[:len(s.Data)-1]
	damaged, err := model.WithSections(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.engine.SetModel(damaged.WithVersion("v2")); !errors.Is(err, blend.ErrCorrupt) {
		t.Fatalf("SetModel of a damaged blend: %v, want blend.ErrCorrupt", err)
	}
	if got := e.engine.Model().Version(); got != "v1" {
		t.Errorf("serving %q after a refused model, want v1", got)
	}
	if err := e.engine.SetModel(model.WithVersion("v3")); err != nil {
		t.Fatalf("SetModel of an intact blend: %v", err)
	}
	if got := e.engine.Model().Version(); got != "v3" {
		t.Errorf("serving %q, want v3", got)
	}
}
