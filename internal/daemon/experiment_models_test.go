package daemon_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/recsys-dev/recsys/internal/daemon"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// TestArmsServeTheirModelVersions: two arms naming two published versions
// (neither the current one) answer their users with their own version,
// the daily counters count the answers under that version, and publishing
// more versions than the registry keeps prunes neither (they are pinned),
// while an unpinned old version is pruned. An unknown version is refused
// naming the arm's field.
func TestArmsServeTheirModelVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := start(t, func(c *daemon.Config) { c.MaxServingModels = 3 })
	xp := recsysv1.NewExperimentServiceClient(r.conn)
	var versions []string
	for i := range 3 {
		v, err := r.reg.Publish(ctx, model(t, float32(i)*0.3))
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v.Name())
	}
	old, armA, armB := versions[0], versions[1], versions[2]
	current, err := r.reg.Publish(ctx, model(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the current model serving", func() bool { return r.servingVersion(t) == current.Name() })

	arms := func(a, b string) *recsysv1.Experiment {
		return &recsysv1.Experiment{Name: "models", Placement: "home", TrafficShare: 1, Arms: []*recsysv1.Arm{
			{Name: "A", Weight: 1, ModelVersion: a}, {Name: "B", Weight: 1, ModelVersion: b}}}
	}
	_, err = xp.CreateExperiment(ctx, &recsysv1.CreateExperimentRequest{Experiment: arms(armA, "20990101T000000Z-abcdef")})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || st.Message() == "" ||
		!strings.Contains(st.Message(), "experiment.arms[1].model_version") {
		t.Fatalf("unknown version: %v, want InvalidArgument naming experiment.arms[1].model_version", err)
	}
	if _, err := xp.CreateExperiment(ctx, &recsysv1.CreateExperimentRequest{Experiment: arms(armA, armB)}); err != nil {
		t.Fatal(err)
	}

	// Users with a history get personalized answers, scored by their arm's
	// version.
	var evs []*recsysv1.Event
	users := make([]string, 40)
	for i := range users {
		users[i] = "mu" + strconv.Itoa(i)
		evs = append(evs, &recsysv1.Event{EventId: "mv" + strconv.Itoa(i), UserId: users[i], ItemId: "i" + strconv.Itoa(i%50),
			Type: recsysv1.EventType_EVENT_TYPE_VIEW})
	}
	if _, err := r.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: evs}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"A": armA, "B": armB}
	seen := map[string]int{}
	eventually(t, "every user answered by the arm's version", func() bool {
		for _, u := range users {
			res, err := r.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: u, Count: 5,
				Context: &recsysv1.RequestContext{Placement: "home"}})
			if err != nil {
				t.Fatal(err)
			}
			if res.GetModelVersion() != want[res.GetArm()] {
				return false // the experiment has not reached the replica's cache yet
			}
			seen[res.GetArm()]++
		}
		return true
	})
	if seen["A"] == 0 || seen["B"] == 0 {
		t.Fatalf("arms seen %v, want both", seen)
	}
	// An answer outside the experiment's placement is the current model's.
	if res, err := r.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: users[0], Count: 5}); err != nil ||
		res.GetModelVersion() != current.Name() || res.GetArm() != "" {
		t.Errorf("outside the experiment: version %q arm %q, %v; want %s", res.GetModelVersion(), res.GetArm(), err, current.Name())
	}

	// The daily counters carry the version that answered.
	today := time.Now().UTC().Format(time.DateOnly)
	eventually(t, "answers counted per arm and version", func() bool {
		rep, err := xp.GetReport(ctx, &recsysv1.GetReportRequest{FromDate: today})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, row := range rep.GetRows() {
			if row.GetExperiment() == "models" && row.GetAnswers() > 0 {
				if row.GetModelVersion() != want[row.GetArm()] {
					t.Fatalf("row %v: counted under version %s, want %s", row.GetArm(), row.GetModelVersion(), want[row.GetArm()])
				}
				got[row.GetArm()] = true
			}
		}
		return got["A"] && got["B"]
	})

	// Five more publishes push every earlier version out of the newest
	// five the registry keeps: the pinned ones stay, the other goes.
	for i := range 5 {
		if _, err := r.reg.Publish(ctx, model(t, 2+float32(i)*0.1)); err != nil {
			t.Fatal(err)
		}
	}
	list, err := r.models.ListModels(ctx, &recsysv1.ListModelsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]bool{}
	for _, m := range list.GetModels() {
		kept[m.GetVersion()] = true
	}
	if !kept[armA] || !kept[armB] || kept[old] || kept[current.Name()] {
		t.Errorf("kept %v: want the arms' %s and %s, not the unpinned %s and %s", kept, armA, armB, old, current.Name())
	}
}
