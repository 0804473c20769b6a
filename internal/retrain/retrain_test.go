package retrain_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/redistest"
	"github.com/recsys-dev/recsys/internal/registry"
	"github.com/recsys-dev/recsys/internal/retrain"
	"github.com/recsys-dev/recsys/internal/synth"
)

var good = mf.Hyperparameters{Factors: 16, Iterations: 10, Regularization: 0.05, Alpha: 10, Seed: 1}

// shop generates a small synthetic shop with planted tastes.
func shop(t *testing.T) []event.Event {
	t.Helper()
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var evs []event.Event
	err := synth.Generate(context.Background(), synth.Config{Users: 600, Items: 300, Events: 30000, Seed: 3,
		Start: end.Add(-30 * 24 * time.Hour), End: end}, func(e event.Event) error {
		evs = append(evs, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func sliceSource(evs []event.Event) retrain.Source {
	return func(ctx context.Context, fn func(event.Event) error) error {
		for _, e := range evs {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}
}

// Events recorded through the profile store are read back from the Redis
// stream, trained on, evaluated, and published to the Redis registry.
func TestTrainOnRedisEventsRoundTrips(t *testing.T) {
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	ctx := context.Background()
	evs := shop(t)
	now := evs[len(evs)-1].Time.Add(time.Hour)
	store, err := profile.NewStore(rdb, profile.Config{Prefix: prefix, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(evs); i += 500 {
		if _, err := store.Record(ctx, evs[i:min(i+500, len(evs))]); err != nil {
			t.Fatal(err)
		}
	}
	reg, err := registry.NewRedis(rdb, registry.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	out, err := retrain.Run(ctx, retrain.Config{Hyper: good, AsOf: now, Now: func() time.Time { return now }},
		retrain.StreamSource(store, time.Time{}, time.Time{}), nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	if out.Events != int64(len(evs)) {
		t.Errorf("read %d events from the stream, recorded %d", out.Events, len(evs))
	}
	items := map[string]bool{}
	for _, e := range evs {
		items[e.ItemID] = true
	}
	if out.Model.NumItems() != len(items) {
		t.Errorf("model has %d items, the events %d", out.Model.NumItems(), len(items))
	}
	if !out.Gate.Passed || out.Gate.New <= out.Gate.Popularity {
		t.Errorf("gate %+v: want passed, ALS above popularity", out.Gate)
	}
	cur, err := reg.Current(ctx)
	if err != nil || len(out.Versions) != 1 || cur != out.Versions[0].Name() {
		t.Fatalf("registry current %q (%v), published %v", cur, err, out.Versions)
	}
	loaded, err := reg.Load(ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.Info().Metrics["ndcg@10"] != out.Gate.New || loaded.Info().Hyper.Factors != good.Factors {
		t.Errorf("published info %+v, want ndcg@10 %v and the hyperparameters", loaded.Info(), out.Gate.New)
	}
	if w := loaded.Info().Weighting; w == nil || *w != event.DefaultWeighting() {
		t.Errorf("published weighting %v, want the job's %+v", w, event.DefaultWeighting())
	}
	for i := int32(0); i < int32(loaded.NumItems()); i += 17 {
		if loaded.ItemID(i) != out.Model.ItemID(i) || loaded.Vector(i)[0] != out.Model.Vector(i)[0] {
			t.Fatalf("published model differs at row %d", i)
		}
	}
}

// recordingPublisher remembers what it was asked to publish.
type recordingPublisher struct{ published []*mf.Model }

func (p *recordingPublisher) Publish(_ context.Context, m *mf.Model) (registry.Version, error) {
	p.published = append(p.published, m)
	return registry.Version{Info: m.Info()}, nil
}

func TestGate(t *testing.T) {
	evs := shop(t)
	asOf := evs[len(evs)-1].Time
	ctx := context.Background()
	// The serving model was trained a week ago: on the events before then.
	cut := time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC)
	var old []event.Event
	for _, e := range evs {
		if e.Time.Before(cut) {
			old = append(old, e)
		}
	}
	serving, err := retrain.Run(ctx, retrain.Config{Hyper: good, AsOf: cut}, sliceSource(old), nil)
	if err != nil {
		t.Fatal(err)
	}
	if until := serving.Model.Info().DataUntil; until.IsZero() || !until.Before(cut) {
		t.Fatalf("serving model's data_until %v, want the last event before %v", until, cut)
	}
	// A model that has seen every event, evaluated as "serving" on this
	// holdout, would be tested on its own training data.
	leaky, err := retrain.Run(ctx, retrain.Config{Hyper: good, AsOf: asOf}, sliceSource(evs), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		hyper    mf.Hyperparameters
		serving  *mf.Model
		tol      float64
		refused  bool
		inReason string
	}{
		{"good model, no serving model", good, nil, 0, false, "vs popularity"},
		{"as good as the serving model", good, serving.Model, 0, false, "vs the serving model"},
		{"serving model trained on the holdout is not compared", good, leaky.Model, 0, false, "serving model not compared"},
		{"worse than the serving model (under-trained)", mf.Hyperparameters{Factors: 16, Iterations: 1, Regularization: 0.05, Alpha: 1, Seed: 0},
			serving.Model, 0.01, true, "below the serving model"},
		{"worse than popularity", mf.Hyperparameters{Factors: 8, Iterations: 3, Regularization: 1e7, Alpha: 1, Seed: 1},
			nil, 0, true, "below popularity"},
		{"degenerate factors", mf.Hyperparameters{Factors: 8, Iterations: 2, Regularization: 0.05, Alpha: 1e300, Seed: 1},
			nil, 0, true, "degenerate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub := &recordingPublisher{}
			out, err := retrain.Run(ctx, retrain.Config{Hyper: tc.hyper, AsOf: asOf, Tolerance: tc.tol, SkipBaselines: true},
				sliceSource(evs), tc.serving, pub)
			if tc.refused {
				if !errors.Is(err, retrain.ErrRefused) || !strings.Contains(err.Error(), tc.inReason) {
					t.Fatalf("got %v, want a refusal mentioning %q", err, tc.inReason)
				}
				if len(pub.published) != 0 {
					t.Fatal("a refused model was published")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(pub.published) != 1 || !strings.Contains(out.Gate.Reason, tc.inReason) {
				t.Errorf("published %d models, gate %+v; want one and a reason with %q", len(pub.published), out.Gate, tc.inReason)
			}
		})
	}
}

// The serving model is scored through its own id table and fold-in: the
// same model scored as "serving" and as "als" gets identical metrics.
func TestServingRecommenderScoresLikeALS(t *testing.T) {
	evs := shop(t)
	ctx := context.Background()
	cfg := retrain.EvalConfig{Hyper: good, AsOf: evs[len(evs)-1].Time}
	s, err := retrain.MakeSplit(ctx, cfg, sliceSource(evs))
	if err != nil {
		t.Fatal(err)
	}
	model, _, err := eval.TrainALS(ctx, s, good, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Reverse the model's item order so the mapping by id matters.
	ids := slices.Clone(model.ItemIDs())
	factors := make([]float32, 0, len(model.Matrix()))
	for i := len(ids) - 1; i >= 0; i-- {
		factors = append(factors, model.Vector(int32(i))...)
	}
	slices.Reverse(ids)
	reversed, err := mf.New(model.Info(), ids, factors)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := eval.Run(ctx, s, []eval.Recommender{eval.NewALS(model, nil), retrain.NewServingRecommender(reversed, s.Matrix.ColIDs)}, eval.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := rep.Model("als")
	b, _ := rep.Model("serving")
	for k, v := range a.Metrics {
		if d := math.Abs(v - b.Metrics[k]); d > 1e-6 {
			t.Errorf("%s: als %v, serving %v", k, v, b.Metrics[k])
		}
	}
}

func TestMakePairSplit(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := func(u, i string) event.Event {
		return event.Event{UserID: u, ItemID: i, Type: event.Purchase, Time: base}
	}
	train := []event.Event{ev("a", "1"), ev("a", "2"), ev("b", "2"), ev("c", "3")}
	test := []event.Event{ev("a", "3"), ev("a", "1"), ev("b", "4"), ev("d", "1")}
	s, err := retrain.MakePairSplit(context.Background(), retrain.EvalConfig{Hyper: good, AsOf: base}, sliceSource(train), sliceSource(test))
	if err != nil {
		t.Fatal(err)
	}
	if s.Matrix.NNZ() != 4 {
		t.Errorf("trained on %d entries, want the 4 of the train file", s.Matrix.NNZ())
	}
	got := map[string][]string{}
	for _, c := range s.Cases {
		u := s.Matrix.RowIDs[c.User]
		for _, i := range c.Test {
			got[u] = append(got[u], s.Matrix.ColIDs[i])
		}
	}
	// a's "1" is in training: it stays a test item and counts as a miss
	// (never ranked); d has no training history but is a test user with
	// nothing known.
	if strings.Join(got["a"], ",") != "1,3" || strings.Join(got["b"], ",") != "4" || strings.Join(got["d"], ",") != "1" {
		t.Errorf("test cases %v, want a:[1 3] b:[4] d:[1]", got)
	}
}

// A historical data set is weighed as of its own last event: MovieLens 100K
// ends in 1998, and decaying it to today would leave every strength at 0.
func TestMakeSplitDecaysFromTheLatestEvent(t *testing.T) {
	end := time.Date(1998, 4, 22, 0, 0, 0, 0, time.UTC)
	var evs []event.Event
	for u := range 4 {
		for i := range 3 {
			evs = append(evs, event.Event{UserID: fmt.Sprint("u", u), ItemID: fmt.Sprint("i", (u+i)%5),
				Type: event.Purchase, Time: end.Add(-time.Duration(30*(3-i)) * 24 * time.Hour)})
		}
	}
	evs = append(evs, event.Event{UserID: "u0", ItemID: "i4", Type: event.View, Time: end})
	if got, err := retrain.Latest(context.Background(), sliceSource(evs)); err != nil || !got.Equal(end) {
		t.Fatalf("Latest = %v, %v; want %v", got, err, end)
	}
	s, err := retrain.MakeSplit(context.Background(), retrain.EvalConfig{Hyper: good}, sliceSource(evs))
	if err != nil {
		t.Fatal(err)
	}
	// The training part holds each user's purchases 90, 60 and 30 days
	// before the end (u0's view at the end is held out): 5·2^-3, 5·2^-2, 5·2^-1.
	want := map[float32]bool{5.0 / 8: true, 5.0 / 4: true, 5.0 / 2: true}
	for _, v := range s.Train.Val {
		if !want[v] {
			t.Errorf("training strength %v, want one of 0.625, 1.25, 2.5 (decayed from %v)", v, end)
		}
	}
	if len(s.Train.Val) == 0 {
		t.Error("no training events")
	}
}
