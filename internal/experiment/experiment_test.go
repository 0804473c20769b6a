package experiment_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/experiment"
	"github.com/recsys-dev/recsys/internal/redistest"
)

func abc() experiment.Experiment {
	return experiment.Experiment{Name: "x1", Placement: "home", TrafficShare: 1, Arms: []experiment.Arm{
		{Name: "A", Weight: 1}, {Name: "B", Weight: 1}, {Name: "C", Weight: 2},
	}}
}

// TestAssignmentIsBalanced: 100,000 ids into weights 1:1:2 pass a
// chi-square test (2 degrees of freedom, critical value 13.82 at
// α = 0.001), and the traffic share holds within 4 standard errors.
func TestAssignmentIsBalanced(t *testing.T) {
	e, err := abc().Normalize()
	if err != nil {
		t.Fatal(err)
	}
	const n = 100000
	counts := map[string]float64{}
	for i := range n {
		a, ok := e.Assign("user-" + strconv.Itoa(i))
		if !ok {
			t.Fatal("traffic share 1 left a user out")
		}
		counts[a.Name]++
	}
	want := map[string]float64{"A": n / 4, "B": n / 4, "C": n / 2}
	chi := 0.0
	for k, w := range want {
		chi += (counts[k] - w) * (counts[k] - w) / w
	}
	if chi > 13.82 {
		t.Errorf("chi-square %.2f > 13.82: counts %v", chi, counts)
	}
	e.TrafficShare = 0.3
	in := 0
	for i := range n {
		if _, ok := e.Assign("user-" + strconv.Itoa(i)); ok {
			in++
		}
	}
	if d := float64(in) - 0.3*n; d*d > 16*0.3*0.7*n {
		t.Errorf("%d of %d users in at traffic share 0.3", in, n)
	}
	// Another salt reshuffles.
	f := e
	f.Salt = "other"
	same := 0
	for i := range 1000 {
		a, okA := e.Assign(strconv.Itoa(i))
		b, okB := f.Assign(strconv.Itoa(i))
		if okA == okB && a.Name == b.Name {
			same++
		}
	}
	if same > 800 {
		t.Errorf("a new salt kept %d of 1000 assignments", same)
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*experiment.Experiment)
		field string
	}{
		{"bad name", func(e *experiment.Experiment) { e.Name = "a b" }, "name"},
		{"no placement", func(e *experiment.Experiment) { e.Placement = "" }, "placement"},
		{"share 0", func(e *experiment.Experiment) { e.TrafficShare = 0 }, "traffic_share"},
		{"share > 1", func(e *experiment.Experiment) { e.TrafficShare = 1.5 }, "traffic_share"},
		{"one arm", func(e *experiment.Experiment) { e.Arms = e.Arms[:1] }, "arms"},
		{"same arm twice", func(e *experiment.Experiment) { e.Arms[1].Name = "A" }, "arms[1].name"},
		{"weight 0", func(e *experiment.Experiment) { e.Arms[2].Weight = 0 }, "arms[2].weight"},
		{"unknown control", func(e *experiment.Experiment) { e.ControlArm = "Z" }, "control_arm"},
	}
	for _, tt := range tests {
		e := abc()
		tt.edit(&e)
		_, err := e.Normalize()
		var inv *experiment.InvalidError
		if !errors.As(err, &inv) || inv.Field != tt.field {
			t.Errorf("%s: got %v, want an error naming %s", tt.name, err, tt.field)
		}
	}
	e, err := abc().Normalize()
	if err != nil || e.Salt != "x1" || e.ControlArm != "A" {
		t.Errorf("defaults: got %+v, %v", e, err)
	}
}

func TestStoreAndCacheAcrossReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	s := experiment.NewStore(rdb, prefix, func() time.Time { return now })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c1, c2 := experiment.NewCache(s, log), experiment.NewCache(experiment.NewStore(rdb, prefix, nil), log)
	if _, err := s.Create(ctx, abc()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, abc()); !errors.Is(err, experiment.ErrConflict) {
		t.Errorf("same name again: %v, want a conflict", err)
	}
	other := abc()
	other.Name = "x2"
	if _, err := s.Create(ctx, other); !errors.Is(err, experiment.ErrConflict) {
		t.Errorf("second experiment on the placement: %v, want a conflict", err)
	}
	for _, c := range []*experiment.Cache{c1, c2} {
		if err := c.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	e1, ok1 := c1.For("home")
	e2, ok2 := c2.For("home")
	if !ok1 || !ok2 {
		t.Fatal("replicas do not see the experiment")
	}
	for i := range 100 {
		u := "u" + strconv.Itoa(i)
		a1, _ := e1.Assign(u)
		a2, _ := e2.Assign(u)
		if a1.Name != a2.Name {
			t.Fatalf("user %s: arm %s on one replica, %s on the other", u, a1.Name, a2.Name)
		}
	}
	if _, err := s.Stop(ctx, "x1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stop(ctx, "nope"); !errors.Is(err, experiment.ErrNotFound) {
		t.Errorf("stop unknown: %v", err)
	}
	if err := c2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := c2.For("home"); ok {
		t.Error("a stopped experiment still runs")
	}
	if _, err := s.Create(ctx, other); err != nil {
		t.Errorf("after stopping, a new experiment on the placement: %v", err)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "x2" || list[1].Running() {
		t.Errorf("List = %+v, %v; want x2 running, then x1 stopped", list, err)
	}
}

// An Update that lands between Stop's read and its write is not lost: the
// stored definition is stopped and carries the updated weights.
func TestStopDoesNotLoseAConcurrentUpdate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	prefix := redistest.Prefix(t, rdb)
	s := experiment.NewStore(rdb, prefix, nil)
	if _, err := s.Create(ctx, abc()); err != nil {
		t.Fatal(err)
	}
	updates := 0
	s.SetBeforeStopWrite(func() {
		if updates > 0 {
			return
		}
		updates++
		changed := abc()
		changed.Arms[2].Weight = 7
		if _, err := experiment.NewStore(rdb, prefix, nil).Update(ctx, changed); err != nil {
			t.Errorf("concurrent update: %v", err)
		}
	})
	got, err := s.Stop(ctx, "x1")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := s.Get(ctx, "x1")
	if err != nil {
		t.Fatal(err)
	}
	for name, e := range map[string]experiment.Experiment{"returned": got, "stored": stored} {
		if e.Running() || e.Arms[2].Weight != 7 {
			t.Errorf("%s: running %v, arm C weight %d; want stopped with the update's weight 7", name, e.Running(), e.Arms[2].Weight)
		}
	}
}
