package server_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

func homeExperiment() *recsysv1.Experiment {
	return &recsysv1.Experiment{Name: "home-1", Placement: "home", TrafficShare: 1, Arms: []*recsysv1.Arm{
		{Name: "control", Weight: 1, Popular: true},
		{Name: "model", Weight: 1},
	}}
}

// arms asks a server for the arm of each user on the placement.
func (e *env) arms(t *testing.T, placement string, users []string) []string {
	t.Helper()
	out := make([]string, len(users))
	for i, u := range users {
		res, err := e.rec.Recommend(context.Background(), &recsysv1.RecommendRequest{UserId: u, Count: 3,
			Context: &recsysv1.RequestContext{Placement: placement}})
		if err != nil {
			t.Fatal(err)
		}
		if (res.GetExperiment() == "") != (res.GetArm() == "") {
			t.Fatalf("user %s: experiment %q with arm %q", u, res.GetExperiment(), res.GetArm())
		}
		out[i] = res.GetExperiment() + "/" + res.GetArm()
	}
	return out
}

// within calls cond until it holds, failing after limit: a change
// made through one server must reach the other within it.
func within(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestExperimentsAcrossTwoServers: an experiment created through one
// server reaches the other within 2 s, both put every user in the same
// arm, the arms answer differently, changes and stops propagate likewise.
func TestExperimentsAcrossTwoServers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := newEnvWith(t, envOptions{model: true, experiments: true, attribution: true})
	b := newEnvWith(t, envOptions{model: true, experiments: true, prefix: a.prefix, clock: a.clock})
	a.upsert(t, plantedCatalog(a.clock.Now())...)
	b.upsert(t, plantedCatalog(a.clock.Now())...)
	users := make([]string, 60)
	var evs []*recsysv1.Event
	for i := range users {
		users[i] = "u" + strconv.Itoa(i)
		evs = append(evs, ev(users[i], "a"+strconv.Itoa(i%10), view, a.clock.Now().Add(-time.Hour)))
	}
	a.record(t, evs...)
	for _, e := range []*env{a, b} {
		if err := e.engine.Popular().Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}

	created, err := a.xp.CreateExperiment(ctx, &recsysv1.CreateExperimentRequest{Experiment: homeExperiment()})
	if err != nil {
		t.Fatal(err)
	}
	got := created.GetExperiment()
	if got.GetSalt() != "home-1" || got.GetControlArm() != "control" || got.GetState() != recsysv1.ExperimentState_EXPERIMENT_STATE_RUNNING {
		t.Errorf("created %v: want salt and control defaulted, running", got)
	}
	// The creating server answers with it at once; the other within 2 s.
	onA := a.arms(t, "home", users)
	within(t, 2*time.Second, "experiment on the second server", func() bool {
		return strings.HasPrefix(b.arms(t, "home", users[:1])[0], "home-1/")
	})
	onB := b.arms(t, "home", users)
	count := map[string]int{}
	for i := range users {
		if onA[i] != onB[i] {
			t.Fatalf("user %s: arm %s on one server, %s on the other", users[i], onA[i], onB[i])
		}
		count[onA[i]]++
	}
	if count["home-1/control"] == 0 || count["home-1/model"] == 0 || count["home-1/control"]+count["home-1/model"] != len(users) {
		t.Fatalf("arms of %d users: %v", len(users), count)
	}
	// The answers are counted per arm.
	if err := a.attr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := a.kpi.Read(ctx, a.clock.Now(), a.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	answers := map[string]int64{}
	for _, r := range rows {
		answers[r.Dims.Experiment+"/"+r.Dims.Arm] += r.Answers
	}
	if answers["home-1/control"] != int64(count["home-1/control"]) || answers["home-1/model"] != int64(count["home-1/model"]) {
		t.Errorf("answers counted per arm %v, want %v", answers, count)
	}
	// Other placements are outside the experiment.
	if other := a.arms(t, "cart", users[:5]); other[0] != "/" {
		t.Errorf("placement cart: %v, want no experiment", other)
	}
	// The control arm answers non-personalized, the model arm personalized.
	for i, u := range users {
		res, err := a.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: u, Count: 3,
			Context: &recsysv1.RequestContext{Placement: "home"}})
		if err != nil {
			t.Fatal(err)
		}
		want := recsysv1.Source_SOURCE_PERSONALIZED
		if onA[i] == "home-1/control" {
			want = recsysv1.Source_SOURCE_POPULAR
		}
		if res.GetSource() != want {
			t.Errorf("user %s in %s: source %v, want %v", u, onA[i], res.GetSource(), want)
		}
	}

	// A second experiment on the placement is refused; on another it runs.
	second := homeExperiment()
	second.Name = "home-2"
	if _, err := b.xp.CreateExperiment(ctx, &recsysv1.CreateExperimentRequest{Experiment: second}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("second experiment on home: %v, want FailedPrecondition", err)
	}

	// Update through b: everyone to the model arm (weight 0 is invalid, so
	// 1 : 10000), seen by a within 2 s.
	upd := homeExperiment()
	upd.Arms[0].Weight, upd.Arms[1].Weight = 1, 10000
	upd.Arms[1].MaxPerCategory = 1
	if _, err := b.xp.UpdateExperiment(ctx, &recsysv1.UpdateExperimentRequest{Experiment: upd}); err != nil {
		t.Fatal(err)
	}
	within(t, 2*time.Second, "update on the first server", func() bool {
		n := 0
		for _, arm := range a.arms(t, "home", users) {
			if arm == "home-1/model" {
				n++
			}
		}
		return n >= len(users)-3
	})
	// The arm's diversity cap applies: at most one item per category.
	res, err := a.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: users[0], Count: 3,
		Context: &recsysv1.RequestContext{Placement: "home"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.GetArm() == "model" {
		seen := map[byte]bool{}
		for _, id := range ids(res.GetItems()) {
			if seen[id[0]] {
				t.Errorf("arm with max_per_category 1 answered %v", ids(res.GetItems()))
			}
			seen[id[0]] = true
		}
	}

	// Stop through b: a answers outside the experiment within 2 s.
	stopped, err := b.xp.StopExperiment(ctx, &recsysv1.StopExperimentRequest{Name: "home-1"})
	if err != nil || stopped.GetExperiment().GetState() != recsysv1.ExperimentState_EXPERIMENT_STATE_STOPPED {
		t.Fatalf("stop: %v, %v", stopped, err)
	}
	within(t, 2*time.Second, "stop on the first server", func() bool { return a.arms(t, "home", users[:1])[0] == "/" })
	if _, err := a.xp.CreateExperiment(ctx, &recsysv1.CreateExperimentRequest{Experiment: second}); err != nil {
		t.Errorf("after the stop, a new experiment on home: %v", err)
	}
	list, err := a.xp.ListExperiments(ctx, &recsysv1.ListExperimentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if l := list.GetExperiments(); len(l) != 2 || l[0].GetName() != "home-2" || l[1].GetState() != recsysv1.ExperimentState_EXPERIMENT_STATE_STOPPED {
		t.Errorf("list: %v, want home-2 running then home-1 stopped", l)
	}
}

func TestExperimentRequestsValidated(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnvWith(t, envOptions{experiments: true})
	tests := []struct {
		name  string
		edit  func(*recsysv1.Experiment)
		code  codes.Code
		field string
	}{
		{"no name", func(x *recsysv1.Experiment) { x.Name = "" }, codes.InvalidArgument, "experiment.name"},
		{"no placement", func(x *recsysv1.Experiment) { x.Placement = "" }, codes.InvalidArgument, "experiment.placement"},
		{"share 0", func(x *recsysv1.Experiment) { x.TrafficShare = 0 }, codes.InvalidArgument, "experiment.traffic_share"},
		{"one arm", func(x *recsysv1.Experiment) { x.Arms = x.Arms[:1] }, codes.InvalidArgument, "experiment.arms"},
		{"weight 0", func(x *recsysv1.Experiment) { x.Arms[1].Weight = 0 }, codes.InvalidArgument, "experiment.arms[1].weight"},
		{"explore share 2", func(x *recsysv1.Experiment) { x.Arms[1].ExploreShare = proto.Float64(2) }, codes.InvalidArgument, "experiment.arms[1].explore_share"},
		{"cold source similar", func(x *recsysv1.Experiment) { x.Arms[0].ColdSource = recsysv1.Source_SOURCE_SIMILAR }, codes.InvalidArgument, "experiment.arms[0].cold_source"},
		{"unknown control", func(x *recsysv1.Experiment) { x.ControlArm = "nope" }, codes.InvalidArgument, "experiment.control_arm"},
	}
	for _, tt := range tests {
		x := homeExperiment()
		tt.edit(x)
		_, err := e.xp.CreateExperiment(ctx, &recsysv1.CreateExperimentRequest{Experiment: x})
		if status.Code(err) != tt.code || !strings.HasPrefix(status.Convert(err).Message(), tt.field+":") {
			t.Errorf("%s: %v, want %v naming %s", tt.name, err, tt.code, tt.field)
		}
	}
	if _, err := e.xp.CreateExperiment(ctx, &recsysv1.CreateExperimentRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("no experiment: %v", err)
	}
	if _, err := e.xp.StopExperiment(ctx, &recsysv1.StopExperimentRequest{Name: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("stop unknown: %v, want NotFound", err)
	}
	if _, err := e.xp.StopExperiment(ctx, &recsysv1.StopExperimentRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("stop without a name: %v, want InvalidArgument", err)
	}
	if _, err := e.xp.CreateExperiment(ctx, &recsysv1.CreateExperimentRequest{Experiment: homeExperiment()}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.xp.CreateExperiment(ctx, &recsysv1.CreateExperimentRequest{Experiment: homeExperiment()}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("the same name again: %v, want FailedPrecondition", err)
	}
	renamed := homeExperiment()
	renamed.Arms[1].Name = "other"
	if _, err := e.xp.UpdateExperiment(ctx, &recsysv1.UpdateExperimentRequest{Experiment: renamed}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("update renaming an arm: %v, want InvalidArgument", err)
	}
	// A server without experiments says so.
	plain := newEnv(t, false)
	if _, err := plain.xp.ListExperiments(ctx, &recsysv1.ListExperimentsRequest{}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("server without experiments: %v, want FailedPrecondition", err)
	}
}

// TestGetReportPerArm: users of two arms get answers; the model arm's
// users buy from them, the control's do not. The report counts users,
// buyers and revenue per arm by hand and compares the arm with control.
func TestGetReportPerArm(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnvWith(t, envOptions{model: true, experiments: true, attribution: true})
	e.upsert(t, plantedCatalog(e.clock.Now())...)
	if _, err := e.xp.CreateExperiment(ctx, &recsysv1.CreateExperimentRequest{Experiment: homeExperiment()}); err != nil {
		t.Fatal(err)
	}
	price := map[string]float64{}
	for _, it := range plantedCatalog(e.clock.Now()) {
		price[it.GetItemId()] = it.GetPrice()
	}
	now := e.clock.Now()
	var evs []*recsysv1.Event
	for i := range 40 {
		evs = append(evs, ev("r"+strconv.Itoa(i), "a"+strconv.Itoa(i%10), view, now.Add(-time.Hour)))
	}
	e.record(t, evs...)
	if err := e.engine.Popular().Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	users := map[string]int64{}
	buyers, revenue := int64(0), 0.0
	var buys []*recsysv1.Event
	for i := range 40 {
		u := "r" + strconv.Itoa(i)
		res, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: u, Count: 4,
			Context: &recsysv1.RequestContext{Placement: "home"}})
		if err != nil {
			t.Fatal(err)
		}
		users[res.GetArm()]++
		if res.GetArm() == "model" {
			item := res.GetItems()[0].GetItemId()
			buys = append(buys, withID(ev(u, item, purchase, now), res.GetRecommendationId(), 1))
			buyers++
			revenue += price[item]
		}
	}
	if err := e.attr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.record(t, buys...)
	day := now.Format(time.DateOnly)
	rep, err := e.xp.GetReport(ctx, &recsysv1.GetReportRequest{FromDate: day, Experiment: "home-1"})
	if err != nil {
		t.Fatal(err)
	}
	arms := rep.GetArms()
	if len(arms) != 2 || arms[0].GetArm() != "control" || !arms[0].GetControl() {
		t.Fatalf("arms %v: want control first", arms)
	}
	c, m := arms[0], arms[1]
	if c.GetUsers() != users["control"] || m.GetUsers() != users["model"] || c.GetAnswers() != users["control"] {
		t.Errorf("users control %d, model %d; want %v", c.GetUsers(), m.GetUsers(), users)
	}
	if c.GetBuyers() != 0 || m.GetBuyers() != buyers || m.GetPurchases() != buyers || abs(m.GetRevenue()-revenue) > 1e-9 {
		t.Errorf("model arm: %d buyers, %d purchases, revenue %v; want %d, %d, %v", m.GetBuyers(), m.GetPurchases(), m.GetRevenue(), buyers, buyers, revenue)
	}
	if conv := m.GetConversion(); abs(conv.GetValue()-1) > 1e-12 || conv.GetLow() >= 1 {
		t.Errorf("model conversion %v, want 1 with an interval below it", conv)
	}
	if l := m.GetConversionLift(); l.GetDifference() != 1 || l.GetPValue() >= 0.05 {
		t.Errorf("lift over control %v: want difference 1, significant", l)
	}
	if c.GetConversionLift() != nil {
		t.Errorf("the control has a lift: %v", c.GetConversionLift())
	}
	var rowAnswers int64
	for _, r := range rep.GetRows() {
		if r.GetExperiment() == "home-1" {
			rowAnswers += r.GetAnswers()
		}
	}
	if rowAnswers != 40 {
		t.Errorf("daily rows count %d answers of the experiment, want 40", rowAnswers)
	}
	// DeleteUser removes a buyer's totals from the arm.
	gone := buys[0].GetUserId()
	if _, err := e.events.DeleteUser(ctx, &recsysv1.DeleteUserRequest{UserId: gone}); err != nil {
		t.Fatal(err)
	}
	rep, err = e.xp.GetReport(ctx, &recsysv1.GetReportRequest{FromDate: day, Experiment: "home-1"})
	if err != nil {
		t.Fatal(err)
	}
	if m := rep.GetArms()[1]; m.GetUsers() != users["model"]-1 || m.GetBuyers() != buyers-1 {
		t.Errorf("after DeleteUser(%s): model arm %d users, %d buyers; want %d, %d", gone, m.GetUsers(), m.GetBuyers(), users["model"]-1, buyers-1)
	}
	for _, bad := range []*recsysv1.GetReportRequest{
		{FromDate: "yesterday"},
		{FromDate: day, ToDate: "2020-01-01"},
		{FromDate: "2020-01-01", ToDate: "2022-01-01"},
	} {
		if _, err := e.xp.GetReport(ctx, bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("GetReport(%v): %v, want InvalidArgument", bad, err)
		}
	}
	if _, err := e.xp.GetReport(ctx, &recsysv1.GetReportRequest{FromDate: day, Experiment: "nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown experiment: %v, want NotFound", err)
	}
}

// TestRetentionPerArmAndSegment plants what users do after their first
// answer in an arm: a third come back on day 2 and buy on days 3 and 5
// (retained, buyers, repurchasers), a third buy within the first hours
// only (buyers), a third do nothing; half of them were first seen 60 days
// before (returning), half not (new). 40 days later the 30-day window has
// passed for everyone and the 90-day window for nobody.
func TestRetentionPerArmAndSegment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnvWith(t, envOptions{model: true, experiments: true, attribution: true})
	e.upsert(t, plantedCatalog(e.clock.Now())...)
	xp := homeExperiment()
	xp.Arms[0].Popular = false
	if _, err := e.xp.CreateExperiment(ctx, &recsysv1.CreateExperimentRequest{Experiment: xp}); err != nil {
		t.Fatal(err)
	}
	t0 := e.clock.Now()
	// Users never seen get popular items (an empty answer is not recorded).
	e.record(t, ev("someone", "b5", view, t0.Add(-time.Hour)))
	if err := e.engine.Popular().Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	type key struct{ arm, segment string }
	want := map[key]*recsysv1.RetentionCounts{}
	users := make([]string, 24)
	arms := make([]string, len(users))
	for i := range users {
		users[i] = "ru" + strconv.Itoa(i)
		segment := "new"
		if i%2 == 0 {
			segment = "returning"
			e.record(t, ev(users[i], "c1", view, t0.Add(-60*24*time.Hour)))
		}
		res, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: users[i], Count: 3,
			Context: &recsysv1.RequestContext{Placement: "home"}})
		if err != nil || res.GetArm() == "" {
			t.Fatalf("Recommend %s: %v, %v", users[i], res, err)
		}
		arms[i] = res.GetArm()
		k := key{res.GetArm(), segment}
		if want[k] == nil {
			want[k] = &recsysv1.RetentionCounts{Segment: segment, Days: 30}
		}
		w := want[k]
		w.Users++
		w.Matured++
		switch i % 3 {
		case 0:
			w.Retained++
			w.Buyers++
			w.Repurchasers++
		case 1:
			w.Buyers++
		}
	}
	if err := e.attr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(40 * 24 * time.Hour)
	for i, u := range users {
		switch i % 3 {
		case 0:
			e.record(t, ev(u, "a1", view, t0.Add(2*24*time.Hour)), ev(u, "a1", purchase, t0.Add(3*24*time.Hour)),
				ev(u, "a2", purchase, t0.Add(5*24*time.Hour)))
		case 1:
			e.record(t, ev(u, "a3", purchase, t0.Add(3*time.Hour)))
		}
	}
	rep, err := e.xp.GetReport(ctx, &recsysv1.GetReportRequest{FromDate: t0.Format(time.DateOnly), Experiment: "home-1", Retention: true})
	if err != nil {
		t.Fatal(err)
	}
	got := map[key]*recsysv1.RetentionCounts{}
	for _, a := range rep.GetArms() {
		for _, c := range a.GetRetention() {
			switch c.GetDays() {
			case 30:
				got[key{a.GetArm(), c.GetSegment()}] = c
			case 90:
				if c.GetMatured() != 0 || c.GetUsers() == 0 {
					t.Errorf("arm %s %s 90 days: %v, want users and none matured", a.GetArm(), c.GetSegment(), c)
				}
			default:
				t.Errorf("arm %s: window of %d days", a.GetArm(), c.GetDays())
			}
		}
	}
	if len(want) < 3 {
		t.Fatalf("planted %d arm × segment groups, want at least 3: %v", len(want), arms)
	}
	for k, w := range want {
		if g := got[k]; !proto.Equal(g, w) {
			t.Errorf("arm %s, %s users, 30 days: got %v, want %v", k.arm, k.segment, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d groups, want %d: %v", len(got), len(want), rep.GetArms())
	}
}
