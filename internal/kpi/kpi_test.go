package kpi_test

import (
	"context"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/attribution"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/kpi"
	"github.com/recsys-dev/recsys/internal/redistest"
)

var day = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func newStore(t *testing.T, cfg kpi.Config) *kpi.Store {
	t.Helper()
	rdb := redistest.Client(t)
	cfg.Prefix = redistest.Prefix(t, rdb)
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return day.Add(20 * time.Hour) }
	}
	s, err := kpi.NewStore(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCountsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	prices := map[string]float64{"x": 2.5, "y": 10}
	s := newStore(t, kpi.Config{Price: func(id string) float64 { return prices[id] }})
	home := attribution.Dims{Placement: "home", Source: "personalized", ModelVersion: "v1", Experiment: "e", Arm: "B"}
	cart := attribution.Dims{Placement: "cart", Source: "popular"}
	ans := func(u string, d attribution.Dims, at time.Time, items ...string) attribution.Answer {
		return attribution.Answer{UserID: u, Placement: d.Placement, Source: d.Source, ModelVersion: d.ModelVersion,
			Experiment: d.Experiment, Arm: d.Arm, Time: at, Items: items}
	}
	if err := s.AddAnswers(ctx, []attribution.Answer{
		ans("u1", home, day.Add(time.Hour), "x", "y", "z"),
		ans("u2", home, day.Add(2*time.Hour), "x", "y"),
		ans("u1", home, day.Add(3*time.Hour), "x"),
		ans("u3", cart, day.Add(4*time.Hour), "y"),
		ans("u3", cart, day.Add(-time.Hour), "y"), // the day before
	}); err != nil {
		t.Fatal(err)
	}
	hit := func(u, item string, typ event.Type, q int32, d attribution.Dims) attribution.Hit {
		return attribution.Hit{Touch: attribution.Touch{UserID: u, ItemID: item, Type: typ, Quantity: q}, Dims: d}
	}
	if err := s.AddHits(ctx, []attribution.Hit{
		hit("u1", "x", event.View, 0, home),
		hit("u1", "x", event.Purchase, 3, home), // 7.5
		hit("u2", "y", event.Purchase, 0, home), // 10
		hit("u2", "y", event.AddToCart, 0, home),
		hit("u3", "q", event.Purchase, 1, cart), // no price: 0
	}); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Read(ctx, day.Add(-24*time.Hour), day)
	if err != nil {
		t.Fatal(err)
	}
	want := []kpi.Row{
		{Day: day.Add(-24 * time.Hour), Dims: cart, Counts: kpi.Counts{Answers: 1, ItemsShown: 1, Users: 1}},
		{Day: day, Dims: cart, Counts: kpi.Counts{Answers: 1, ItemsShown: 1, Purchases: 1, Units: 1, Users: 1, Buyers: 1}},
		{Day: day, Dims: home, Counts: kpi.Counts{Answers: 3, ItemsShown: 6, Clicks: 1, Carts: 1, Purchases: 2, Units: 4,
			Revenue: 17.5, Users: 2, Buyers: 2}},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows %+v, want %d", len(rows), rows, len(want))
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d: got %+v, want %+v", i, rows[i], want[i])
		}
	}
}

func TestDimsAreCapped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, kpi.Config{MaxDims: 2})
	for _, p := range []string{"a", "b", "c", "d", "a"} {
		if err := s.AddAnswers(ctx, []attribution.Answer{{UserID: "u", Placement: p, Time: day, Items: []string{"x"}}}); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := s.Read(ctx, day, day)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, r := range rows {
		got[r.Dims.Placement] = r.Answers
	}
	want := map[string]int64{"a": 2, "b": 1, kpi.OtherPlacement: 2}
	if len(got) != len(want) || got["a"] != 2 || got["b"] != 1 || got[kpi.OtherPlacement] != 2 {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestReadRejectsBadRanges(t *testing.T) {
	t.Parallel()
	s := newStore(t, kpi.Config{})
	if _, err := s.Read(context.Background(), day, day.Add(-24*time.Hour)); err == nil {
		t.Error("reversed range: no error")
	}
	if _, err := s.Read(context.Background(), day, day.Add(500*24*time.Hour)); err == nil {
		t.Error("500 days: no error")
	}
}

// Item pages' answers have no user: they count as answers and items shown,
// not as users, and the event's user of a hit counts as a buyer.
func TestAnswersWithoutUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, kpi.Config{Price: func(string) float64 { return 4 }})
	page := attribution.Dims{Placement: "similar_items", Source: "similar", ModelVersion: "v1"}
	ans := attribution.Answer{Placement: page.Placement, Source: page.Source, ModelVersion: page.ModelVersion, Time: day.Add(time.Hour)}
	a1, a2, a3 := ans, ans, ans
	a1.Items, a2.Items, a3.Items = []string{"x", "y"}, []string{"x"}, []string{"z"}
	a3.UserID = "u9" // the same dimensions with a user
	if err := s.AddAnswers(ctx, []attribution.Answer{a1, a2, a3}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddHits(ctx, []attribution.Hit{
		{Touch: attribution.Touch{UserID: "u1", ItemID: "x", Type: event.Purchase, Quantity: 2}, Dims: page},
	}); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Read(ctx, day, day)
	if err != nil {
		t.Fatal(err)
	}
	want := kpi.Row{Day: day, Dims: page, Counts: kpi.Counts{Answers: 3, ItemsShown: 4, Purchases: 1, Units: 2, Revenue: 8, Users: 1, Buyers: 1}}
	if len(rows) != 1 || rows[0] != want {
		t.Fatalf("got %+v, want [%+v]", rows, want)
	}
}
