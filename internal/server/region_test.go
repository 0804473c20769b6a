package server_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// Items the catalog sells only in some regions are recommended and ranked
// only in those; a request without a region is not restricted.
func TestRegionalAvailability(t *testing.T) {
	e := newEnv(t, true)
	now := e.clock.Now()
	items := plantedCatalog(now)
	items = with(items, "b4", func(it *recsysv1.Item) { it.Regions = []string{"de", "at"} })
	items = with(items, "b5", func(it *recsysv1.Item) { it.Regions = []string{"us-west"} })
	e.upsert(t, items...)
	got, err := e.catalog.GetItems(context.Background(), &recsysv1.GetItemsRequest{ItemIds: []string{"b4"}})
	if err != nil {
		t.Fatal(err)
	}
	if r := got.GetItems()[0].GetRegions(); !slices.Equal(r, []string{"de", "at"}) {
		t.Fatalf("b4's regions read back as %q", r)
	}
	e.record(t, ev("ub", "b1", view, now), ev("ub", "b2", view, now))
	for _, c := range []struct {
		region        string
		want, without []string
	}{
		{"de", []string{"b4"}, []string{"b5"}},
		{"us-west", []string{"b5"}, []string{"b4"}},
		{"fr", nil, []string{"b4", "b5"}},
		{"", []string{"b4", "b5"}, nil},
	} {
		res := e.recommend(t, &recsysv1.RecommendRequest{UserId: "ub", Count: 8, Context: &recsysv1.RequestContext{Region: c.region}})
		got := ids(res.GetItems())
		for _, id := range c.want {
			if !slices.Contains(got, id) {
				t.Errorf("region %q: %v lacks %s", c.region, got, id)
			}
		}
		for _, id := range c.without {
			if slices.Contains(got, id) {
				t.Errorf("region %q: %v has %s", c.region, got, id)
			}
		}
	}
	ranked := e.rank(t, &recsysv1.RankItemsRequest{UserId: "ub", ItemIds: []string{"b4", "b5", "b6"},
		Context: &recsysv1.RequestContext{Region: "de"}})
	if got := ids(ranked.GetItems()); !slices.Equal(got, []string{"b4", "b6"}) && !slices.Equal(got, []string{"b6", "b4"}) {
		t.Errorf("RankItems in de kept %v, want b4 and b6", got)
	}
	if d := ranked.GetDropped(); len(d) != 1 || d[0].GetItemId() != "b5" || d[0].GetReason() != recsysv1.DropReason_DROP_REASON_NOT_IN_REGION {
		t.Errorf("RankItems in de dropped %v, want b5 for its region", d)
	}
	// Popular fallback obeys it too: a cold user in fr never gets b4 or b5.
	e.record(t, ev("x1", "b4", purchase, now), ev("x2", "b4", purchase, now), ev("x3", "b5", purchase, now))
	if err := e.engine.Popular().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	cold := ids(e.recommend(t, &recsysv1.RecommendRequest{UserId: "cold", Count: 30, Context: &recsysv1.RequestContext{Region: "fr"}}).GetItems())
	if slices.Contains(cold, "b4") || slices.Contains(cold, "b5") || !slices.Contains(cold, "b1") {
		t.Errorf("cold user in fr got %v, want popular items sold everywhere (b1) and not b4 or b5", cold)
	}
}

// A malformed region is refused with InvalidArgument naming the field.
func TestMalformedRegion(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	bad := []string{"DE", "de west", strings.Repeat("x", 33), "é"}
	for _, r := range bad {
		_, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u", Count: 3, Context: &recsysv1.RequestContext{Region: r}})
		wantInvalid(t, err, "context.region")
		_, err = e.rec.RankItems(ctx, &recsysv1.RankItemsRequest{UserId: "u", ItemIds: []string{"a1"}, Context: &recsysv1.RequestContext{Region: r}})
		wantInvalid(t, err, "context.region")
		_, err = e.catalog.UpsertItems(ctx, &recsysv1.UpsertItemsRequest{Items: []*recsysv1.Item{{ItemId: "i", Regions: []string{"de", r}}}})
		wantInvalid(t, err, "items[0].regions[1]")
		_, err = e.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{{EventId: "e1", UserId: "u", ItemId: "a1",
			Type: view, Timestamp: ev("u", "a1", view, e.clock.Now()).GetTimestamp(), Region: r}}})
		wantInvalid(t, err, "events[0].region")
	}
	_, err := e.catalog.UpsertItems(ctx, &recsysv1.UpsertItemsRequest{Items: []*recsysv1.Item{{ItemId: "i", Regions: []string{"de", "de"}}}})
	wantInvalid(t, err, "items[0].regions[1]")
}

func wantInvalid(t *testing.T, err error, field string) {
	t.Helper()
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), field) {
		t.Errorf("got %v, want InvalidArgument naming %s", err, field)
	}
}

// A shopper without history gets the popular items of their region first
// (counted from events that carry the region), then the global ones.
func TestRegionalPopularityForColdUsers(t *testing.T) {
	e := newEnv(t, true)
	now := e.clock.Now()
	var evs []*recsysv1.Event
	add := func(user, item, region string) {
		x := ev(user, item, purchase, now)
		x.Region = region
		evs = append(evs, x)
	}
	for i := range 6 { // globally b-items lead, b1 first
		add("g"+strconv.Itoa(i), "b1", "")
		add("g"+strconv.Itoa(i), "b2", "")
	}
	add("g9", "b1", "")
	for i := range 3 {
		add("d"+strconv.Itoa(i), "c7", "de")
		add("f"+strconv.Itoa(i), "a4", "fr")
	}
	add("d9", "c8", "de")
	add("h0", "a3", "fr")
	again := evs[len(evs)-1]
	add("h1", "a3", "fr")
	e.record(t, evs...)
	// A retried event is not counted again: a3 stays behind a4.
	e.record(t, again)
	e.record(t, again)
	if err := e.engine.Popular().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		region string
		want   []string
	}{
		{"de", []string{"c7", "c8", "b1"}},
		{"fr", []string{"a4", "a3", "b1"}},
		{"", []string{"b1", "b2"}},
		{"it", []string{"b1", "b2"}},
	} {
		res := e.recommend(t, &recsysv1.RecommendRequest{UserId: "newcomer", Count: int32(len(c.want)),
			Context: &recsysv1.RequestContext{Region: c.region}})
		got := ids(res.GetItems())
		if c.region == "" || c.region == "it" {
			slices.Sort(got)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("region %q: got %v, want %v", c.region, got, c.want)
		}
	}
}
