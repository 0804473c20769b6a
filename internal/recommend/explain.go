package recommend

import (
	"time"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/profile"
)

// ReasonKind names why an item is in an answer.
type ReasonKind int

// The reasons.
const (
	ReasonUnspecified    ReasonKind = iota
	ReasonProfileItem               // the profile item contributing most to the model score
	ReasonPopular                   // popular now
	ReasonTrending                  // trending
	ReasonNewArrival                // a new item in an exploration slot
	ReasonBoughtTogether            // bought together with Reason.ItemID
	ReasonSimilar                   // similar to Reason.ItemID
)

// Reason explains one item of an answer.
type Reason struct {
	Kind ReasonKind
	// ItemID: the profile item (ReasonProfileItem), the item asked about
	// (ReasonSimilar) or the item it is bought with (ReasonBoughtTogether).
	ItemID string
	// EventType is the type of event that weighs most in the user's
	// history of ItemID (ReasonProfileItem; View for the context item).
	EventType event.Type
	// Contribution is ItemID's term of the score (ReasonProfileItem).
	Contribution float32
	// Category is the item's category (ReasonNewArrival).
	Category string
	// BoostRules name the shop's boost rules that changed the score (at
	// most 8), BoostAdjustment their total effect, already in the score.
	BoostRules      []string
	BoostAdjustment float32
}

// explain sets the reason of every model-scored item of a: the profile row
// whose term in the exact decomposition of the score is largest. The
// folded-in vector is x = A⁻¹ Σ_j c_j y_j (Hu, Koren, Volinsky 2008, §5), so
// score_i = Σ_j c_j yᵢᵀA⁻¹y_j; mf.Model.Contributions computes the terms
// with one solve against the Cholesky factor the fold-in left in s.ws, so
// this costs one O(f²) solve plus len(rows) dot products per returned item,
// never per catalog item. The event type of a profile row is looked up in
// the history once, however many items it explains. now is the request's
// clock reading, the one its profile weights were computed at.
func (e *Engine) explain(m *mf.Model, s *scratch, a *answer, p profile.Profile, contextItem string, now time.Time) error {
	if cap(s.contrib) < len(s.rows) {
		s.contrib = make([]float64, len(s.rows))
		s.rowTypes = make([]event.Type, len(s.rows))
	}
	contrib := s.contrib[:len(s.rows)]
	types := s.rowTypes[:len(s.rows)]
	clear(types) // TypeUnspecified: not looked up yet
	for i := range a.items {
		if a.items[i].Source != SourcePersonalized || a.rows[i] < 0 {
			continue
		}
		if err := m.Contributions(&s.ws, s.rows, s.weights, a.rows[i], contrib); err != nil {
			return err
		}
		best := 0
		for j, c := range contrib {
			if c > contrib[best] {
				best = j
			}
		}
		id := m.ItemID(s.rows[best])
		if types[best] == event.TypeUnspecified {
			types[best] = e.dominantType(e.weighting(m), p, id, contextItem, now)
		}
		a.items[i].Reason = Reason{
			Kind:         ReasonProfileItem,
			ItemID:       id,
			EventType:    types[best],
			Contribution: float32(contrib[best]),
		}
	}
	return nil
}

// dominantType is the event type with the largest total weight among the
// user's events with item id; the page's context item counts as one view.
func (e *Engine) dominantType(w event.Weighting, p profile.Profile, id, contextItem string, now time.Time) event.Type {
	var byType [8]float64
	if id == contextItem {
		byType[event.View] += e.cfg.ContextWeight
	}
	for _, h := range p.History {
		if h.ItemID == id && int(h.Type) < len(byType) {
			byType[h.Type] += w.Of(h.Event(p.UserID), now)
		}
	}
	best := event.View
	for t := range byType {
		if byType[t] > 0 && byType[t] >= byType[best] {
			best = event.Type(t)
		}
	}
	return best
}
