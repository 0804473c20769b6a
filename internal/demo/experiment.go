package demo

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/recsys-dev/recsys/client"
	"github.com/recsys-dev/recsys/internal/reportview"
	"github.com/recsys-dev/recsys/internal/synth"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// runExperiment runs a small A/B experiment on the "home" placement:
// popular items (control) against the model. Each simulated shopper clicks
// a shown item of one of their three favourite categories with
// probability 0.5 (0.05 for other items) and buys a clicked item with
// probability 0.3, sending the answer's recommendation_id back as a
// product page would. The model shows more of a shopper's categories, so
// its arm should sell more; the report says by how much, with intervals.
func runExperiment(ctx context.Context, api *client.Client, users int, seed uint64, categories map[string]string, w io.Writer) error {
	say := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	xp := &recsysv1.Experiment{Name: "demo-home", Placement: "home", TrafficShare: 1, Arms: []*recsysv1.Arm{
		{Name: "popular", Weight: 1, Popular: true}, {Name: "model", Weight: 1},
	}}
	if _, err := api.Experiments.CreateExperiment(ctx, &recsysv1.CreateExperimentRequest{Experiment: xp}); err != nil {
		return err
	}
	say("\n== A/B experiment demo-home on placement home: arm popular (control) vs arm model, %d shoppers", users)
	rng := rand.New(rand.NewPCG(seed, 3))
	type shown struct {
		user, recID string
		items       []string
	}
	var answers []shown
	inXP := 0 // answers the server assigned to the experiment's arms
	for i := range users {
		u := synth.UserID(i)
		p, err := api.Events.GetProfile(ctx, &recsysv1.GetProfileRequest{UserId: u})
		if err != nil {
			return err
		}
		fav := map[string]bool{}
		for j, a := range p.GetProfile().GetCategoryAffinities() {
			if j < 3 {
				fav[a.GetCategory()] = true
			}
		}
		res, err := api.Recommendations.Recommend(ctx, &recsysv1.RecommendRequest{UserId: u, Count: 8,
			Context: &recsysv1.RequestContext{Placement: "home"}})
		if err != nil {
			return err
		}
		var clicked []string
		for _, it := range res.GetItems() {
			p := 0.05
			if fav[categories[it.GetItemId()]] {
				p = 0.5
			}
			if rng.Float64() < p {
				clicked = append(clicked, it.GetItemId())
			}
		}
		if res.GetExperiment() == xp.Name {
			inXP++
		}
		answers = append(answers, shown{u, res.GetRecommendationId(), clicked})
	}
	// The answer records are written off the request path: wait for them
	// before the shoppers' events arrive.
	today := time.Now().UTC().Format(time.DateOnly)
	var n int64
	var lastErr error
	counted := func() bool {
		rep, err := api.Experiments.GetReport(ctx, &recsysv1.GetReportRequest{FromDate: today, Experiment: xp.Name})
		if lastErr = err; err != nil {
			return false
		}
		n = 0
		for _, a := range rep.GetArms() {
			n += a.GetAnswers()
		}
		return n >= int64(inXP)
	}
	// Answer records are best effort: wait for all of them, but once the
	// count has stopped moving for 5 s and at least 95 % are in, go on and
	// say how many are missing (an open defect under heavy load, counted
	// in recsys_answer_records_failed_total / _dropped_total).
	var last int64
	moved := time.Now()
	settled := func() bool {
		if counted() {
			return true
		}
		if n != last {
			last, moved = n, time.Now()
		}
		return n*100 >= int64(inXP)*95 && time.Since(moved) > 5*time.Second
	}
	if err := poll(ctx, "the experiment's answers", settled); err != nil {
		return fmt.Errorf("%w (the report counts %d of the %d answers given in the experiment; last error: %v)", err, n, inXP, lastErr)
	}
	if n < int64(inXP) {
		say("   (the report counts %d of the %d answers given; %d records were lost)", n, inXP, int64(inXP)-n)
	}
	if inXP < users {
		say("   (%d of %d answers were in the experiment)", inXP, users)
	}
	var evs []*recsysv1.Event
	send := func() error {
		if len(evs) == 0 {
			return nil
		}
		_, err := api.Events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: evs})
		evs = evs[:0]
		return err
	}
	for _, a := range answers {
		for k, item := range a.items {
			evs = append(evs, &recsysv1.Event{EventId: fmt.Sprintf("xp-%s-%d-v", a.user, k), UserId: a.user, ItemId: item,
				Type: recsysv1.EventType_EVENT_TYPE_VIEW, RecommendationId: a.recID})
			if rng.Float64() < 0.3 {
				evs = append(evs, &recsysv1.Event{EventId: fmt.Sprintf("xp-%s-%d-p", a.user, k), UserId: a.user, ItemId: item,
					Type: recsysv1.EventType_EVENT_TYPE_PURCHASE, Quantity: 1, RecommendationId: a.recID})
			}
		}
		if len(evs) > 500 {
			if err := send(); err != nil {
				return err
			}
		}
	}
	if err := send(); err != nil {
		return err
	}
	rep, err := api.Experiments.GetReport(ctx, &recsysv1.GetReportRequest{FromDate: today, Experiment: xp.Name})
	if err != nil {
		return err
	}
	say("== recsysctl report --experiment demo-home:")
	return reportview.Write(w, xp.Name, rep)
}
