package server

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/recsys-dev/recsys/internal/attribution"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/recommend"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// Attributor keeps answer records and matches events to them (implemented
// by *attribution.Store).
type Attributor interface {
	Enqueue(a attribution.Answer) bool
	Attribute(ctx context.Context, touches []attribution.Touch) (attribution.Result, error)
	DeleteUser(ctx context.Context, userID string) (int, error)
}

// OutcomeCounter counts attributed events in the daily metrics
// (implemented by *kpi.Store).
type OutcomeCounter interface {
	AddHits(ctx context.Context, hits []attribution.Hit) error
}

// answerRecorder hands answers to the attribution store; a nil recorder
// records nothing.
type answerRecorder struct {
	attr Attributor
	now  func() time.Time
}

// record enqueues the answer to a user (nothing without a user or items).
// xp and arm are the user's experiment and arm ("" outside experiments).
func (r *answerRecorder) record(id, userID, placement, xp, arm string, res recommend.Result) {
	if r == nil || r.attr == nil || userID == "" || len(res.Items) == 0 {
		return
	}
	r.attr.Enqueue(attribution.Answer{
		ID: id, UserID: userID, Placement: placement, Source: sourceName(toSource(res.Source)),
		ModelVersion: res.ModelVersion, Experiment: xp, Arm: arm, Time: r.now(), Items: itemIDs(res),
	})
}

func itemIDs(res recommend.Result) []string {
	items := make([]string, len(res.Items))
	for i, it := range res.Items {
		items[i] = it.ItemID
	}
	return items
}

// The placements of the item pages' answers in the records and the daily
// counters when their requests name none.
const (
	similarPlacement = "similar_items"
	boughtPlacement  = "bought_together"
)

// orDefault is placement, or def when it is empty.
func orDefault(placement, def string) string {
	if placement == "" {
		return def
	}
	return placement
}

// recordItemPage enqueues an answer that has no user (SimilarItems,
// BoughtTogether): it is attributed by its id only, to whoever sends the
// id back (nothing without items).
func (r *answerRecorder) recordItemPage(id, placement string, res recommend.Result) {
	if r == nil || r.attr == nil || len(res.Items) == 0 {
		return
	}
	r.attr.Enqueue(attribution.Answer{
		ID: id, Placement: placement, Source: sourceName(toSource(res.Source)),
		ModelVersion: res.ModelVersion, Time: r.now(), Items: itemIDs(res),
	})
}

// sourceName is the short lower-case name of a source ("personalized").
func sourceName(s recsysv1.Source) string {
	return strings.TrimPrefix(strings.ToLower(s.String()), "source_")
}

// attributeEvents attributes the fresh views, carts and purchases of a
// stored batch and counts them. Failures are logged, never returned: the
// events are stored, and a retry would be a duplicate.
func attributeEvents(ctx context.Context, log *slog.Logger, attr Attributor, out OutcomeCounter,
	evs []event.Event, reqs []*recsysv1.Event, fresh []bool) {
	if attr == nil {
		return
	}
	var touches []attribution.Touch
	for i, e := range evs {
		if i >= len(fresh) || !fresh[i] || !attribution.Attributable(e.Type) {
			continue
		}
		touches = append(touches, attribution.Touch{
			UserID: e.UserID, ItemID: e.ItemID, Type: e.Type, Time: e.Time, Quantity: e.Quantity,
			RecommendationID: reqs[i].GetRecommendationId(),
		})
	}
	if len(touches) == 0 {
		return
	}
	res, err := attr.Attribute(ctx, touches)
	if err != nil {
		log.WarnContext(ctx, "attribute events", "err", err, "events", len(touches))
		return
	}
	if out != nil && len(res.Hits) > 0 {
		if err := out.AddHits(ctx, res.Hits); err != nil {
			log.WarnContext(ctx, "count attributed events", "err", err, "hits", len(res.Hits))
		}
	}
}
