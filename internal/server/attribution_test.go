package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/recsys-dev/recsys/internal/attribution"
	"github.com/recsys-dev/recsys/internal/kpi"
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
