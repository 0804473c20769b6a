package profile

import (
	"cmp"
	"slices"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

// Entry is one event of a user's history.
type Entry struct {
	ItemID   string
	Type     event.Type
	Time     time.Time // millisecond precision
	Quantity int32
	Weight   float32 // only for event.Custom
}

// Event is the entry as an event of the given user (without an event id,
// which history does not keep).
func (e Entry) Event(userID string) event.Event {
	return event.Event{UserID: userID, ItemID: e.ItemID, Type: e.Type, Time: e.Time, Quantity: e.Quantity, Weight: e.Weight}
}

// Purchase is an item a user bought and when they last bought it.
type Purchase struct {
	ItemID string
	Time   time.Time
}

// Profile is what the store knows about one user.
type Profile struct {
	UserID    string
	History   []Entry    // newest first, at most Config.HistoryCap
	Purchased []Purchase // newest first, at most Config.PurchasedCap
	// PurchaseCount counts every purchase event ever recorded (within the
	// key TTL), not only the items still in Purchased.
	PurchaseCount       int64
	FirstSeen, LastSeen time.Time // earliest and latest event time; zero when unknown
	// OptedOut users asked not to be personalized; their profile holds only
	// purchases.
	OptedOut bool
	// Impressions are the items shown to the user since their last click
	// on each (at most Config.ImpressionKeep newest times per item, items
	// shown within Config.ImpressionWindow), sorted by item id.
	Impressions []Impressions
	// Pushed are the items sent to the user in push messages (event.Push)
	// within Config.PushWindow, with the latest time each was sent, newest
	// first, at most Config.PushCap.
	Pushed []Pushed
	// Orders are the user's purchase events (newest first, at most
	// Config.OrderCap, within UserTTL), for the spend and purchase
	// frequency of the segment.
	Orders []Order
	// Dismissed are the items and categories the user dismissed
	// (event.NotInterested) and the items they rated at or below
	// event.LowRating, within Config.NotInterestedTTL, newest first, at
	// most Config.DismissCap.
	Dismissed []Dismissal
	// Searches are what the user's searches matched in the catalog, most
	// matched first, at most Config.SearchCap.
	Searches []SearchAffinity
}

// Dismissal is an item or a category a user does not want to see.
type Dismissal struct {
	ItemID    string // empty when a category is dismissed
	Category  string // empty when an item is dismissed
	LowRating bool   // the item was rated low, not dismissed: moved down, not left out
	Time      time.Time
}

// SearchAffinity is a catalog attribute value ("category", "brand", ...)
// the user's searches matched, and how many of them did.
type SearchAffinity struct {
	Attribute, Value string
	Count            float64
}

// Pushed is an item sent to a user and when it was last sent.
type Pushed struct {
	ItemID string
	Time   time.Time
}

// Order is one purchase event: when, and its spend (quantity × the item's
// price when it was recorded; 0 when the price was unknown).
type Order struct {
	Time  time.Time
	Spend float64
}

// Impressions are the times one item was shown to a user after the user's
// last click on it.
type Impressions struct {
	ItemID string
	Times  []time.Time // oldest first
}

// ShownSince counts the impressions at or after t.
func (im Impressions) ShownSince(t time.Time) int {
	n := 0
	for _, x := range im.Times {
		if !x.Before(t) {
			n++
		}
	}
	return n
}

// ItemWeight is a user's aggregated interest in one item.
type ItemWeight struct {
	ItemID   string
	Weight   float64   // Σ Weighting.Of over the item's history entries
	LastTime time.Time // time of the item's newest entry
	Events   int       // number of history entries of the item
}

// ItemWeights aggregates the history per item with the shared weighting, so
// the fold-in sees the same strengths the trainer used. Heaviest first, ties
// by item id.
func (p Profile) ItemWeights(w event.Weighting, now time.Time) []ItemWeight {
	if len(p.History) == 0 {
		return nil
	}
	index := make(map[string]int, len(p.History))
	out := make([]ItemWeight, 0, len(p.History))
	for _, h := range p.History {
		i, ok := index[h.ItemID]
		if !ok {
			i = len(out)
			index[h.ItemID] = i
			out = append(out, ItemWeight{ItemID: h.ItemID})
		}
		iw := &out[i]
		iw.Weight += w.Of(h.Event(p.UserID), now)
		iw.Events++
		if h.Time.After(iw.LastTime) {
			iw.LastTime = h.Time
		}
	}
	slices.SortFunc(out, func(a, b ItemWeight) int {
		if c := cmp.Compare(b.Weight, a.Weight); c != 0 {
			return c
		}
		return cmp.Compare(a.ItemID, b.ItemID)
	})
	return out
}

// ItemScore is an item and its score.
type ItemScore struct {
	ItemID string
	Score  float64
}
