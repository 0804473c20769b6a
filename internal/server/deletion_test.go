package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"

	"github.com/recsys-dev/recsys/internal/redistest"
)

// TestDeleteUserLeavesNothingNamingTheUser: a user who did everything the
// API records (events of every type, an attributed answer in an
// experiment, a push campaign) is named somewhere in Redis before
// DeleteUser and nowhere after it, in no form: not in a key name, a value,
// a field, a member or a stream entry.
func TestDeleteUserLeavesNothingNamingTheUser(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnvWith(t, envOptions{model: true, experiments: true, attribution: true})
	e.upsert(t, plantedCatalog(e.clock.Now())...)
	user := redistest.HostileID(t)
	forms := redistest.IDForms(user)
	now := e.clock.Now()
	at := func(d time.Duration) time.Time { return now.Add(d) }
	e.record(t,
		ev(user, "a1", view, at(-time.Hour)),
		ev(user, "a2", recsysv1.EventType_EVENT_TYPE_ADD_TO_CART, at(-59*time.Minute)),
		ev(user, "a3", purchase, at(-58*time.Minute)),
		ev(user, "a4", recsysv1.EventType_EVENT_TYPE_IMPRESSION, at(-57*time.Minute)),
		ev(user, "a5", recsysv1.EventType_EVENT_TYPE_PUSH, at(-56*time.Minute)),
		ev(user, "a6", recsysv1.EventType_EVENT_TYPE_WISHLIST, at(-55*time.Minute)),
		&recsysv1.Event{EventId: "r1", UserId: user, ItemId: "a7", Type: recsysv1.EventType_EVENT_TYPE_RATING, Rating: 1, Timestamp: ev("", "", view, at(-54*time.Minute)).Timestamp},
		&recsysv1.Event{EventId: "s1", UserId: user, Type: recsysv1.EventType_EVENT_TYPE_SEARCH, Query: "a", Timestamp: ev("", "", view, at(-53*time.Minute)).Timestamp},
		&recsysv1.Event{EventId: "n1", UserId: user, Type: recsysv1.EventType_EVENT_TYPE_NOT_INTERESTED, Category: "c", Timestamp: ev("", "", view, at(-52*time.Minute)).Timestamp},
		ev("stays", "a1", view, at(-time.Hour)),
	)
	// The random id lands in either arm: both answer from the model (a
	// popular control would have nothing left to show this user, who
	// touched every item anyone touched).
	xp := homeExperiment()
	xp.Arms[0].Popular = false
	if _, err := e.xp.CreateExperiment(ctx, &recsysv1.CreateExperimentRequest{Experiment: xp}); err != nil {
		t.Fatal(err)
	}
	res, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: user, Count: 5, Context: &recsysv1.RequestContext{Placement: "home"}})
	if err != nil || len(res.GetItems()) == 0 {
		t.Fatalf("Recommend: %v, %v", res, err)
	}
	if err := e.attr.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	e.record(t, withID(ev(user, res.GetItems()[0].GetItemId(), purchase, now), res.GetRecommendationId(), 1))
	for _, campaign := range []string{"spring", "summer"} {
		e.mustBatch(t, &recsysv1.BatchRecommendRequest{UserIds: []string{user, "stays"}, Count: 3, CampaignId: campaign, HoldoutShare: 0.5})
	}

	rdb := redistest.Client(t)
	named := func() []string {
		var out []string
		redistest.EachString(t, rdb, e.prefix, func(key, what, v string) {
			for _, f := range forms {
				if strings.Contains(v, f) {
					out = append(out, fmt.Sprintf("%s (%s): %q", key, what, v))
					return
				}
			}
		})
		return out
	}
	before := named()
	t.Logf("before DeleteUser: %d places name the user:\n%s", len(before), strings.Join(before, "\n"))
	if len(before) < 5 {
		t.Fatalf("before DeleteUser the user is named in only %d places: %q", len(before), before)
	}
	if _, err := e.events.DeleteUser(ctx, &recsysv1.DeleteUserRequest{UserId: user}); err != nil {
		t.Fatal(err)
	}
	for _, s := range named() {
		t.Errorf("after DeleteUser: %s", s)
	}
	// The other user is untouched.
	if p, err := e.events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: "stays"}); err != nil || len(p.GetProfile().GetItems()) != 1 {
		t.Errorf("the other user's profile: %v, %v", p, err)
	}
}
