package retrain_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/content"
	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/itemindex"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/redistest"
	"github.com/recsys-dev/recsys/internal/registry"
	"github.com/recsys-dev/recsys/internal/retrain"
	"github.com/recsys-dev/recsys/internal/synth"
	"github.com/recsys-dev/recsys/internal/traindata"
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
	// The serving index's cells travel with the model and load.
	sec, ok := loaded.Section(itemindex.SectionKind)
	if !ok {
		t.Fatal("the published model has no ivf section")
	}
	if _, err := itemindex.FromSection(loaded, sec); err != nil {
		t.Errorf("the ivf section does not load: %v", err)
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
			nil, 0, true, "popularity wins"},
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

// With item-kNN in the gate, a model below it is refused and the reason
// names item-kNN.
func TestGateRefusesBelowItemKNN(t *testing.T) {
	evs := shop(t)
	pub := &recordingPublisher{}
	weak := mf.Hyperparameters{Factors: 8, Iterations: 3, Regularization: 1e7, Alpha: 1, Seed: 1}
	out, err := retrain.Run(context.Background(), retrain.Config{Hyper: weak, AsOf: evs[len(evs)-1].Time}, sliceSource(evs), nil, pub)
	if !errors.Is(err, retrain.ErrRefused) || !strings.Contains(err.Error(), "item-kNN wins") {
		t.Fatalf("got %v, want a refusal naming item-kNN", err)
	}
	if len(pub.published) != 0 || !(out.Gate.KNN > out.Gate.New) {
		t.Errorf("published %d, gate %+v", len(pub.published), out.Gate)
	}
}

// negated is a candidate that ranks ALS's scores upside down: a bad one.
type negated struct{}

func (negated) Name() string { return "negated" }
func (negated) Fit(ctx context.Context, in retrain.FitInput) (retrain.Fitted, error) {
	f, err := retrain.ALSCandidate{}.Fit(ctx, in)
	return negFitted{f}, err
}

type negFitted struct{ retrain.Fitted }

func (negFitted) Name() string { return "negated" }
func (n negFitted) Scores(cases []traindata.Case, out []float32) error {
	err := n.Fitted.Scores(cases, out)
	for i := range out {
		out[i] = -out[i]
	}
	return err
}

// The gate publishes the best candidate, whatever the order they are
// listed in, and every candidate is in the report.
func TestGatePublishesTheBestCandidate(t *testing.T) {
	evs := shop(t)
	pub := &recordingPublisher{}
	out, err := retrain.Run(context.Background(), retrain.Config{Hyper: good, AsOf: evs[len(evs)-1].Time,
		Candidates: []retrain.Candidate{negated{}, retrain.ALSCandidate{}}}, sliceSource(evs), nil, pub)
	if err != nil {
		t.Fatal(err)
	}
	if out.Gate.Candidate != "als" || len(pub.published) != 1 {
		t.Fatalf("gate %+v, published %d: want als published", out.Gate, len(pub.published))
	}
	for _, name := range []string{"negated", "als", "popularity", "itemknn"} {
		if _, ok := out.Report.Model(name); !ok {
			t.Errorf("report lacks %s", name)
		}
	}
}

// tick is a clock that advances by step on every call: a search's course
// then depends only on its inputs.
func tick(step time.Duration) func() time.Time {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { now = now.Add(step); return now }
}

// The tuned job records its search in the model, and the next run starts
// from the settings it chose.
func TestTunedRunRecordsAndWarmStarts(t *testing.T) {
	evs := shop(t)
	ctx := context.Background()
	base := mf.Hyperparameters{Factors: 32, Iterations: 4, Regularization: 0.05, Alpha: 10, Seed: 1}
	cfg := retrain.Config{Hyper: base, AsOf: evs[len(evs)-1].Time, TuneBudget: 30 * time.Second, TuneClock: tick(time.Second),
		SkipBaselines: true} // item-kNN beats a 4-iteration ALS on this shop; this test is about the record
	first, err := retrain.Run(ctx, cfg, sliceSource(evs), nil)
	if err != nil {
		t.Fatal(err)
	}
	tun := first.Model.Info().Tuning
	if tun == nil || len(tun.Trials) < 3 || tun.Candidate != "als" || tun.Chosen != first.Model.Info().Hyper {
		t.Fatalf("tuning record %+v, model settings %+v", tun, first.Model.Info().Hyper)
	}
	cfg.TuneClock = tick(time.Second)
	var trials []mf.TuningTrial
	cfg.TuneProgress = func(tr mf.TuningTrial) { trials = append(trials, tr) }
	if _, err := retrain.Run(ctx, cfg, sliceSource(evs), first.Model); err != nil && !errors.Is(err, retrain.ErrRefused) {
		t.Fatal(err)
	}
	want := tun.Chosen
	if len(trials) == 0 {
		t.Fatal("second run ran no trial")
	}
	got := trials[0].Hyper
	if got.Factors != want.Factors || got.Regularization != want.Regularization || got.Alpha != want.Alpha ||
		got.RegExponent != want.RegExponent || got.Confidence != want.Confidence {
		t.Errorf("first trial %+v, want the previous choice %+v", got, want)
	}
}

// Tuning and the job's choice read only the training part: a split whose
// test cases are replaced by others gets the same search, the same choice
// and the same gate.
func TestEvaluateJobNeverReadsTheTestPart(t *testing.T) {
	evs := shop(t)
	ctx := context.Background()
	base := mf.Hyperparameters{Factors: 32, Iterations: 4, Regularization: 0.05, Alpha: 10, Seed: 1}
	cfg := retrain.EvalConfig{Hyper: base, AsOf: evs[len(evs)-1].Time, Job: true, TuneBudget: 25 * time.Second}
	clean, err := retrain.MakeSplit(ctx, cfg, sliceSource(evs))
	if err != nil {
		t.Fatal(err)
	}
	poisoned := *clean
	poisoned.Cases = slices.Clone(clean.Cases)
	for i := range poisoned.Cases {
		poisoned.Cases[i].Test = []int32{int32(i % clean.Matrix.Cols)}
	}
	var runs []*retrain.JobEvaluation
	for _, s := range []*traindata.Split{clean, &poisoned} {
		cfg.TuneClock = tick(time.Second)
		job, err := retrain.EvaluateJob(ctx, cfg, s)
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, job)
	}
	a, b := runs[0], runs[1]
	if a.Tuning == nil || len(a.Tuning.Trials) < 3 {
		t.Fatalf("no search ran: %+v", a.Tuning)
	}
	if !reflect.DeepEqual(a.Tuning, b.Tuning) || a.Gate.Reason != b.Gate.Reason || a.Gate.Candidate != b.Gate.Candidate {
		t.Errorf("the test part changed the job's choice:\n%+v\n%+v", a.Tuning, b.Tuning)
	}
	if a.Report.Models[0].Name != a.Gate.Candidate {
		t.Errorf("first model %q, want the job's %q", a.Report.Models[0].Name, a.Gate.Candidate)
	}
	x, _ := a.Report.Model(a.Gate.Candidate)
	y, _ := b.Report.Model(a.Gate.Candidate)
	if x.Metrics["ndcg@10"] == y.Metrics["ndcg@10"] {
		t.Error("the poisoned test cases scored the same: the test cannot tell the splits apart")
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

// With item descriptions the published model carries a content map that
// places an item it never saw; without them it has none.
func TestRunFitsTheContentMap(t *testing.T) {
	evs := shop(t)
	good := mf.Hyperparameters{Factors: 8, Iterations: 5, Regularization: 0.05, Alpha: 10, Seed: 1}
	items := func(id string) (content.Item, bool) {
		return content.Item{Category: "c" + strconv.Itoa(len(id)%3), Title: "item " + id}, true
	}
	for _, c := range []struct {
		name  string
		items func(string) (content.Item, bool)
		want  bool
	}{{"described", items, true}, {"not described", nil, false}} {
		out, err := retrain.Run(context.Background(), retrain.Config{Hyper: good, AsOf: evs[len(evs)-1].Time, SkipBaselines: true,
			Items: c.items}, sliceSource(evs), nil)
		if err != nil && !errors.Is(err, retrain.ErrRefused) {
			t.Fatal(err)
		}
		mp, err := content.FromModel(out.Model)
		if got := err == nil; got != c.want {
			t.Fatalf("%s: content map %v (err %v), want %v", c.name, got, err, c.want)
		}
		if c.want && !mp.Vector(content.Item{Category: "c1"}, make([]float32, mp.Factors())) {
			t.Errorf("%s: a new item of a known category is not placed", c.name)
		}
	}
}
