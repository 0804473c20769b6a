package daemon_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/daemon"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// armCounts are an experiment's counts of one arm, summed over the report's
// rows, and its per-user figures.
type armCounts struct {
	Answers, ItemsShown, Clicks, Purchases int64 // from the daily rows
	Users, Buyers                          int64 // from the arm's report
}

// report asks for the experiment's report over yesterday and today (UTC;
// a test crossing midnight stays within it) and sums it per arm.
func report(t *testing.T, xp recsysv1.ExperimentServiceClient, name string) map[string]armCounts {
	t.Helper()
	now := time.Now().UTC()
	rep, err := xp.GetReport(context.Background(), &recsysv1.GetReportRequest{Experiment: name,
		FromDate: now.Add(-24 * time.Hour).Format(time.DateOnly), ToDate: now.Format(time.DateOnly)})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]armCounts{}
	for _, row := range rep.GetRows() {
		if row.GetExperiment() != name {
			continue
		}
		c := out[row.GetArm()]
		c.Answers += row.GetAnswers()
		c.ItemsShown += row.GetItemsShown()
		c.Clicks += row.GetClicks()
		c.Purchases += row.GetPurchases()
		out[row.GetArm()] = c
	}
	for _, a := range rep.GetArms() {
		c := out[a.GetArm()]
		c.Users, c.Buyers = a.GetUsers(), a.GetBuyers()
		out[a.GetArm()] = c
	}
	return out
}

// answer is one Recommend answer, kept to send events back.
type answer struct {
	id, arm string
	items   []string
}

// TestCountersSurviveARestart: answers and the events attributed to them
// are counted in Redis, so a new server on the same Redis reports the same
// counts; the answers of the last requests before the stop are written as
// the server stops (not lost with its queue); and events sent after the
// restart still attribute, directly and by last touch, to answers the old
// server made.
func TestCountersSurviveARestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	first := start(t)
	cur, err := first.reg.Publish(ctx, model(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the model serving", func() bool { return first.servingVersion(t) == cur.Name() })
	const name = "restart"
	xp := recsysv1.NewExperimentServiceClient(first.conn)
	if _, err := xp.CreateExperiment(ctx, &recsysv1.CreateExperimentRequest{Experiment: &recsysv1.Experiment{
		Name: name, Placement: "home", TrafficShare: 1,
		Arms: []*recsysv1.Arm{{Name: "control", Weight: 1, Popular: true}, {Name: "model", Weight: 1}}}}); err != nil {
		t.Fatal(err)
	}

	users := make([]string, 24)
	var history []*recsysv1.Event
	for i := range users {
		users[i] = "ru" + strconv.Itoa(i)
		history = append(history, &recsysv1.Event{EventId: "rh" + strconv.Itoa(i), UserId: users[i],
			ItemId: "i" + strconv.Itoa(i%50), Type: recsysv1.EventType_EVENT_TYPE_VIEW})
	}
	record := func(r *running, evs ...*recsysv1.Event) {
		t.Helper()
		if _, err := r.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: evs}); err != nil {
			t.Fatal(err)
		}
	}
	record(first, history...)
	// The control arm answers with the popular items: wait for the
	// popularity refresh to have seen the history.
	eventually(t, "popular items", func() bool {
		res, err := first.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "cold", Count: 5})
		return err == nil && len(res.GetItems()) == 5
	})
	recommend := func(r *running) map[string]answer {
		t.Helper()
		out := map[string]answer{}
		for _, u := range users {
			res, err := r.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: u, Count: 5,
				Context: &recsysv1.RequestContext{Placement: "home"}})
			if err != nil {
				t.Fatal(err)
			}
			if res.GetExperiment() != name || len(res.GetItems()) != 5 {
				t.Fatalf("user %s: experiment %q arm %q, %d items; want the experiment's arm and 5 items",
					u, res.GetExperiment(), res.GetArm(), len(res.GetItems()))
			}
			a := answer{id: res.GetRecommendationId(), arm: res.GetArm()}
			for _, it := range res.GetItems() {
				a.items = append(a.items, it.GetItemId())
			}
			out[u] = a
		}
		return out
	}
	perArm := map[string]int64{}
	before := recommend(first)
	for _, a := range before {
		perArm[a.arm]++
	}
	if len(perArm) != 2 {
		t.Fatalf("users per arm %v, want both arms", perArm)
	}
	// The answer records are written off the request path: events attribute
	// once they are.
	eventually(t, "the answers counted", func() bool {
		got := report(t, xp, name)
		return got["control"].Answers == perArm["control"] && got["model"].Answers == perArm["model"]
	})
	// Every user clicks the first item; every other user buys the second.
	var evs []*recsysv1.Event
	buyers := map[string]int64{}
	for i, u := range users {
		a := before[u]
		evs = append(evs, &recsysv1.Event{EventId: "rc" + strconv.Itoa(i), UserId: u, ItemId: a.items[0],
			Type: recsysv1.EventType_EVENT_TYPE_VIEW, RecommendationId: a.id})
		if i%2 == 0 {
			evs = append(evs, &recsysv1.Event{EventId: "rp" + strconv.Itoa(i), UserId: u, ItemId: a.items[1],
				Type: recsysv1.EventType_EVENT_TYPE_PURCHASE, RecommendationId: a.id, Quantity: 1})
			buyers[a.arm]++
		}
	}
	record(first, evs...)
	want := map[string]armCounts{}
	for _, arm := range []string{"control", "model"} {
		want[arm] = armCounts{Answers: perArm[arm], ItemsShown: 5 * perArm[arm], Clicks: perArm[arm],
			Purchases: buyers[arm], Users: perArm[arm], Buyers: buyers[arm]}
	}
	if got := report(t, xp, name); got["control"] != want["control"] || got["model"] != want["model"] {
		t.Fatalf("before the restart: report %+v, want %+v", got, want)
	}

	// The last answers before the stop: nobody waits for their records.
	recommend(first)
	first.stop()
	for _, arm := range []string{"control", "model"} {
		c := want[arm]
		c.Answers, c.ItemsShown = 2*perArm[arm], 10*perArm[arm]
		want[arm] = c
	}

	second := start(t, func(c *daemon.Config) { c.Prefix = first.prefix })
	xp = recsysv1.NewExperimentServiceClient(second.conn)
	if got := report(t, xp, name); got["control"] != want["control"] || got["model"] != want["model"] {
		t.Fatalf("after the restart: report %+v, want %+v (the counts before it, and the last answers written at the stop)", got, want)
	}

	// After the restart, events attribute to the old server's answers:
	// a purchase by the first answer's id, and a view without id (last
	// touch) of an item the first answer showed (it counts for the newer
	// answer if that showed it too: both are the old server's).
	evs = evs[:0]
	for i, u := range users {
		a := before[u]
		evs = append(evs,
			&recsysv1.Event{EventId: "ap" + strconv.Itoa(i), UserId: u, ItemId: a.items[3],
				Type: recsysv1.EventType_EVENT_TYPE_PURCHASE, RecommendationId: a.id, Quantity: 1},
			&recsysv1.Event{EventId: "av" + strconv.Itoa(i), UserId: u, ItemId: a.items[2],
				Type: recsysv1.EventType_EVENT_TYPE_VIEW})
	}
	record(second, evs...)
	for _, arm := range []string{"control", "model"} {
		c := want[arm]
		c.Purchases += perArm[arm]
		c.Buyers = perArm[arm]
		c.Clicks += perArm[arm]
		want[arm] = c
	}
	if got := report(t, xp, name); got["control"] != want["control"] || got["model"] != want["model"] {
		t.Fatalf("events after the restart: report %+v, want %+v", got, want)
	}
}
