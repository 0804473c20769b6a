package server_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/recsys-dev/recsys/internal/attribution"
	"github.com/recsys-dev/recsys/internal/kpi"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/redistest"
	"github.com/recsys-dev/recsys/internal/server"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// withID is ev with a recommendation id and a quantity.
func withID(e *recsysv1.Event, recID string, quantity int32) *recsysv1.Event {
	e.RecommendationId, e.Quantity = recID, quantity
	return e
}

// TestAttributionThroughGRPC follows one answer through the events a shop
// sends back and checks the daily counters by hand.
func TestAttributionThroughGRPC(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnvWith(t, envOptions{model: true, attribution: true})
	e.upsert(t, plantedCatalog(e.clock.Now())...)
	e.record(t, ev("u1", "a0", view, e.clock.Now().Add(-time.Hour)))
	res, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u1", Count: 5,
		Context: &recsysv1.RequestContext{Placement: "home"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetItems()) != 5 || res.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED {
		t.Fatalf("answer %v from %v, want 5 personalized items", ids(res.GetItems()), res.GetSource())
	}
	if err := e.attr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	recID, shown := res.GetRecommendationId(), ids(res.GetItems())
	price := map[string]float64{}
	for _, it := range plantedCatalog(e.clock.Now()) {
		price[it.GetItemId()] = it.GetPrice()
	}
	now := e.clock.Now()
	bought := withID(ev("u1", shown[1], purchase, now), recID, 2)
	e.record(t,
		bought,
		withID(ev("u1", shown[1], purchase, now), recID, 1),   // the same (answer, item, type): counted once
		ev("u1", shown[2], view, now),                         // no id: last touch
		withID(ev("u2", shown[3], purchase, now), recID, 1),   // another user's answer
		withID(ev("u1", shown[4], purchase, now), "nope", 1),  // unknown id: accepted, unattributed
		withID(ev("u1", "c9", purchase, now), recID, 1),       // not in the answer
		withID(ev("u1", shown[0], impression, now), recID, 0), // impressions are not attributed
	)
	if got := e.record(t, bought); got.GetDuplicates() != 1 { // a retry
		t.Fatalf("retry: %v", got)
	}
	e.clock.Advance(8 * 24 * time.Hour)
	e.record(t, withID(ev("u1", shown[3], purchase, e.clock.Now()), recID, 1)) // after the window

	rows, err := e.kpi.Read(ctx, now, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := kpi.Row{
		Day:  now.UTC().Truncate(24 * time.Hour),
		Dims: attribution.Dims{Placement: "home", Source: "personalized", ModelVersion: "v1"},
		Counts: kpi.Counts{Answers: 1, ItemsShown: 5, Clicks: 1, Purchases: 1, Units: 2,
			Revenue: 2 * price[shown[1]], Users: 1, Buyers: 1},
	}
	if len(rows) != 1 || rows[0] != want {
		t.Fatalf("daily counters:\n got %+v\nwant [%+v]", rows, want)
	}

	// DeleteUser removes the answer records.
	e.clock.Advance(-8 * 24 * time.Hour)
	del, err := e.events.DeleteUser(ctx, &recsysv1.DeleteUserRequest{UserId: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if del.GetDeletedKeys() < 2 {
		t.Errorf("deleted %d keys, want the profile's and 2 answer keys", del.GetDeletedKeys())
	}
	e.record(t, withID(ev("u1", shown[4], purchase, e.clock.Now()), recID, 1))
	rows, err = e.kpi.Read(ctx, now, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Purchases != 1 {
		t.Errorf("after DeleteUser a purchase was attributed: %+v", rows)
	}
}

func TestEventAttributionFieldsValidated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	long := string(make([]byte, 300))
	for _, tc := range []struct {
		name  string
		ev    *recsysv1.Event
		field string
	}{
		{"long id", &recsysv1.Event{EventId: "e", UserId: "u", ItemId: "i", Type: view, RecommendationId: long}, "events[0].recommendation_id"},
		{"long placement", &recsysv1.Event{EventId: "e", UserId: "u", ItemId: "i", Type: view, Placement: long}, "events[0].placement"},
	} {
		_, err := e.events.RecordEvents(context.Background(), &recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{tc.ev}})
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), tc.field+":") {
			t.Errorf("%s: got %v %q, want InvalidArgument naming %s", tc.name, st.Code(), st.Message(), tc.field)
		}
	}
}

// TestItemPageAttributionThroughGRPC sends the ids of a SimilarItems and a
// BoughtTogether answer (which have no user) back with events of shoppers
// and checks the daily counters by hand.
func TestItemPageAttributionThroughGRPC(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	e := newEnvWith(t, envOptions{model: true, attribution: true, rdb: rdb, prefix: redistest.Prefix(t, rdb),
		server: func(_ *server.Config, d *server.Deps) { d.Bought = d.Recommender.(*recommend.Engine) }})
	catalog := plantedCatalog(e.clock.Now())
	e.upsert(t, catalog...)
	price := map[string]float64{}
	for _, it := range catalog {
		price[it.GetItemId()] = it.GetPrice()
	}
	sim, err := e.rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: "a0", Count: 4})
	if err != nil {
		t.Fatal(err)
	}
	bought, err := e.rec.BoughtTogether(ctx, &recsysv1.BoughtTogetherRequest{ItemIds: []string{"b0"}, Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(sim.GetItems()) != 4 || len(bought.GetItems()) != 3 {
		t.Fatalf("answers %v and %v, want 4 and 3 items", ids(sim.GetItems()), ids(bought.GetItems()))
	}
	if err := e.attr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	simID, simShown := sim.GetRecommendationId(), ids(sim.GetItems())
	boughtID, boughtShown := bought.GetRecommendationId(), ids(bought.GetItems())
	notShown := ""
	for _, it := range catalog {
		if !slices.Contains(simShown, it.GetItemId()) {
			notShown = it.GetItemId()
			break
		}
	}

	const shopper = "shopper-7f"
	now := e.clock.Now()
	viewed := withID(ev(shopper, simShown[2], view, now), simID, 0)
	res := e.record(t,
		viewed,
		withID(ev(shopper, simShown[2], purchase, now), simID, 3),
		withID(ev("shopper-8g", simShown[2], view, now), simID, 0), // the same (answer, item, type): counted once
		withID(ev(shopper, notShown, view, now), simID, 0),         // not in the answer
		withID(ev(shopper, simShown[1], view, now), "nope", 0),     // unknown id: accepted, unattributed
		ev(shopper, simShown[3], view, now),                        // no id: item pages have no last touch
		withID(ev("shopper-9h", boughtShown[0], view, now), boughtID, 0),
	)
	if res.GetAccepted() != 7 {
		t.Fatalf("RecordEvents: %v, want all 7 accepted", res)
	}
	if got := e.record(t, viewed); got.GetDuplicates() != 1 { // a retry
		t.Fatalf("retry: %v", got)
	}

	// The records name no user, and DeleteUser leaves them.
	for _, id := range []string{simID, boughtID} {
		rec, err := rdb.HGetAll(ctx, e.attr.PageAnswerKey(id)).Result()
		if err != nil || rec["r"] == "" {
			t.Fatalf("record of %s: %q, %v", id, rec, err)
		}
		for f, v := range rec {
			if strings.Contains(f+v, "shopper") {
				t.Errorf("record of %s names a user: %q = %q", id, f, v)
			}
		}
	}
	if _, err := e.events.DeleteUser(ctx, &recsysv1.DeleteUserRequest{UserId: shopper}); err != nil {
		t.Fatal(err)
	}
	e.record(t, withID(ev("shopper-8g", simShown[0], cart, now), simID, 0)) // still attributed

	rows, err := e.kpi.Read(ctx, now, now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]kpi.Row{}
	for _, r := range rows {
		got[r.Dims.Placement] = r
	}
	day := now.UTC().Truncate(24 * time.Hour)
	source := func(s recsysv1.Source) string { return strings.TrimPrefix(strings.ToLower(s.String()), "source_") }
	want := map[string]kpi.Row{
		"similar_items": {Day: day, Dims: attribution.Dims{Placement: "similar_items", Source: source(sim.GetSource()), ModelVersion: "v1"},
			Counts: kpi.Counts{Answers: 1, ItemsShown: 4, Clicks: 1, Carts: 1, Purchases: 1, Units: 3, Revenue: 3 * price[simShown[2]], Buyers: 1}},
		"bought_together": {Day: day, Dims: attribution.Dims{Placement: "bought_together", Source: source(bought.GetSource()), ModelVersion: "v1"},
			Counts: kpi.Counts{Answers: 1, ItemsShown: 3, Clicks: 1}},
	}
	if len(got) != len(want) || len(rows) != len(want) {
		t.Fatalf("daily counters: got %+v, want %+v", rows, want)
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("daily counters of %s:\n got %+v\nwant %+v", p, got[p], w)
		}
	}
}

// TestItemPagePlacementThroughGRPC: a SimilarItems and a BoughtTogether
// answer that name their placement are reported, with the events sent back
// with their ids, under that placement; a bad placement is InvalidArgument
// naming the field (invalid UTF-8, which the Go client cannot send, is in
// TestUndecodableRequestsAreInvalidArgument).
func TestItemPagePlacementThroughGRPC(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rdb := redistest.Client(t)
	e := newEnvWith(t, envOptions{model: true, attribution: true, rdb: rdb, prefix: redistest.Prefix(t, rdb),
		server: func(_ *server.Config, d *server.Deps) { d.Bought = d.Recommender.(*recommend.Engine) }})
	e.upsert(t, plantedCatalog(e.clock.Now())...)

	long := strings.Repeat("p", 257)
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"similar, too long", func() error {
			_, err := e.rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: "a0", Count: 4, Placement: long})
			return err
		}},
		{"bought together, too long", func() error {
			_, err := e.rec.BoughtTogether(ctx, &recsysv1.BoughtTogetherRequest{ItemIds: []string{"b0"}, Count: 3, Placement: long})
			return err
		}},
	} {
		if st := status.Convert(tc.call()); st.Code() != codes.InvalidArgument || !strings.HasPrefix(st.Message(), "placement:") {
			t.Errorf("%s: got %v %q, want InvalidArgument naming placement", tc.name, st.Code(), st.Message())
		}
	}

	sim, err := e.rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: "a0", Count: 4, Placement: "pdp_similar"})
	if err != nil {
		t.Fatal(err)
	}
	bought, err := e.rec.BoughtTogether(ctx, &recsysv1.BoughtTogetherRequest{ItemIds: []string{"b0"}, Count: 3, Placement: "cart_bt"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sim.GetItems()) != 4 || len(bought.GetItems()) != 3 {
		t.Fatalf("answers %v and %v, want 4 and 3 items", ids(sim.GetItems()), ids(bought.GetItems()))
	}
	if err := e.attr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	e.record(t,
		withID(ev("shopper-1", ids(sim.GetItems())[1], view, now), sim.GetRecommendationId(), 0),
		withID(ev("shopper-1", ids(sim.GetItems())[1], purchase, now), sim.GetRecommendationId(), 1),
		withID(ev("shopper-2", ids(bought.GetItems())[0], cart, now), bought.GetRecommendationId(), 0),
	)

	rep, err := e.xp.GetReport(ctx, &recsysv1.GetReportRequest{FromDate: now.Format(time.DateOnly)})
	if err != nil {
		t.Fatal(err)
	}
	type counts struct{ answers, shown, clicks, carts, purchases int64 }
	got := map[string]counts{}
	for _, r := range rep.GetRows() {
		c := got[r.GetPlacement()]
		got[r.GetPlacement()] = counts{c.answers + r.GetAnswers(), c.shown + r.GetItemsShown(), c.clicks + r.GetClicks(),
			c.carts + r.GetCarts(), c.purchases + r.GetPurchases()}
	}
	want := map[string]counts{
		"pdp_similar": {answers: 1, shown: 4, clicks: 1, purchases: 1},
		"cart_bt":     {answers: 1, shown: 3, carts: 1},
	}
	if len(got) != len(want) || got["pdp_similar"] != want["pdp_similar"] || got["cart_bt"] != want["cart_bt"] {
		t.Fatalf("report rows by placement: got %+v, want %+v", got, want)
	}
}
