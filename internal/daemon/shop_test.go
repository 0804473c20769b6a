package daemon_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// The daemon wires the shop rules and the catalog into answers: a blocklist
// change and a catalog change reach Recommend on their own (rules poll,
// catalog sync, row-state refresh), the blocklist within a second.
func TestShopRulesReachAnswers(t *testing.T) {
	r := start(t)
	ctx := context.Background()
	if _, err := r.reg.Publish(ctx, model(t, 0)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a model", func() bool { return r.servingVersion(t) != "" })
	if _, err := r.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: []*recsysv1.Event{
		{EventId: "1", UserId: "u", ItemId: "i3", Type: recsysv1.EventType_EVENT_TYPE_VIEW, Timestamp: timestamppb.Now()},
	}}); err != nil {
		t.Fatal(err)
	}
	top := func() []string {
		res, err := r.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u", Count: 3})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, it := range res.GetItems() {
			ids = append(ids, it.GetItemId())
			if it.GetReason().GetKind() != recsysv1.ReasonKind_REASON_KIND_PROFILE_ITEM || it.GetReason().GetItemId() != "i3" {
				t.Errorf("%s: reason %v, want the viewed i3", it.GetItemId(), it.GetReason())
			}
		}
		return ids
	}
	best := top()[0]
	cat := recsysv1.NewCatalogServiceClient(r.conn)
	if _, err := cat.AddToBlocklist(ctx, &recsysv1.AddToBlocklistRequest{ItemIds: []string{best}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, "the blocked item gone", func() bool { return !slices.Contains(top(), best) })
	if d := time.Since(start); d > time.Second {
		t.Errorf("blocklist change took %v, want within a second", d)
	}
	next := top()[0]
	if _, err := cat.UpsertItems(ctx, &recsysv1.UpsertItemsRequest{Items: []*recsysv1.Item{{ItemId: next, Available: false}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the unavailable item gone", func() bool { return !slices.Contains(top(), next) })
}
