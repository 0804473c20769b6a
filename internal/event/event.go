// Package event defines the behavioural events the service learns from and the
// one weighting that turns them into implicit-feedback strengths.
//
// The online profile and the retraining job both call Weighting.Of, so an
// item's weight in a live profile and its confidence in the training matrix
// come from the same definition: per-type weight times quantity, times an
// exponential time decay with a configurable half-life.
package event

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Type is what a user did with an item.
type Type uint8

// The event types. The numbering matches recsys.v1.EventType; new types are
// added at the end.
const (
	TypeUnspecified Type = iota
	View
	AddToCart
	Purchase
	Custom // carries its own Weight
	// Impression records that the item was shown to the user. It is not a
	// signal of interest: it weighs 0 in every Weighting, never enters a
	// profile's history or the fold-in, and is kept only to rotate items
	// that were shown repeatedly without a click.
	Impression
	// Push records that the item was sent to the user in a push message.
	// Like an impression it is not a signal of interest: it weighs 0 in
	// every Weighting, never enters a profile's history, the fold-in or the
	// training stream, and is kept only so a push campaign does not send
	// the same item again within its dedup window.
	Push
	// Search records a search of the user. It carries no item: the query's
	// matches in the catalog (Event.Matches) become the user's search
	// affinities. It weighs 0 and never enters the history or the training
	// stream; the query text never reaches the store.
	Search
	// Rating is a rating of the item, 1 to 5, carried in Event.Weight. A
	// rating above NeutralRating weighs Weighting.Rating scaled by how far
	// above; at or below LowRating it moves the item down for the user.
	Rating
	// NotInterested dismisses the item, or (with an empty ItemID) the
	// category in Event.Category, for the user. It weighs 0 and never
	// enters the history or the training stream.
	NotInterested
	// Wishlist is an add to the user's wishlist, weighing Weighting.Wishlist.
	Wishlist
)

// Rating scale of Rating events.
const (
	MinRating     = 1
	MaxRating     = 5
	NeutralRating = 3 // weighs 0; above it, a signal of interest
	LowRating     = 2 // at or below it, the item is moved down for the user
)

var typeNames = [...]string{"unspecified", "view", "cart", "purchase", "custom", "impression", "push",
	"search", "rating", "not_interested", "wishlist"}

// String returns the name used in CSV files ("view", "cart", "purchase").
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// Valid reports whether t is a known type other than TypeUnspecified.
func (t Type) Valid() bool { return t > TypeUnspecified && t <= Wishlist }

// Click reports whether t is a positive interaction with the item (anything
// but an impression, a push, a search or a dismissal): a click after an
// impression resets its rotation.
func (t Type) Click() bool {
	return t.Valid() && t != Impression && t != Push && t != Search && t != NotInterested
}

// Streamed reports whether events of type t go to the global event stream
// the trainer reads (and count in popularity): the signals of interest.
func (t Type) Streamed() bool {
	return t.Valid() && t != Impression && t != Push && t != Search && t != NotInterested
}

// ParseType reads an event type as the CSV format writes it: "view",
// "cart" (or "add_to_cart"), "purchase" (or "buy"), case-insensitive, or a
// positive number, which means Custom with that number as the weight.
// "impression" (or "shown") is an Impression, "push" a Push, "wishlist" a
// Wishlist, "not_interested" (or "dismiss") a NotInterested of the item, and
// "rating:<1 to 5>" a Rating with that value as its Weight. Searches carry a
// query, which CSV files do not.
func ParseType(s string) (Type, float32, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "view", "click", "detail_view":
		return View, 0, nil
	case "cart", "add_to_cart", "addtocart":
		return AddToCart, 0, nil
	case "purchase", "buy", "transaction", "order":
		return Purchase, 0, nil
	case "impression", "shown":
		return Impression, 0, nil
	case "push":
		return Push, 0, nil
	case "wishlist", "add_to_wishlist", "wish":
		return Wishlist, 0, nil
	case "not_interested", "dismiss":
		return NotInterested, 0, nil
	}
	if v, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(s)), "rating:"); ok {
		r, err := strconv.ParseFloat(v, 32)
		if err != nil || !(r >= MinRating && r <= MaxRating) {
			return TypeUnspecified, 0, fmt.Errorf("event type %q: a rating is rating:<1 to 5>", s)
		}
		return Rating, float32(r), nil
	}
	w, err := strconv.ParseFloat(strings.TrimSpace(s), 32)
	if err != nil || math.IsNaN(w) || math.IsInf(w, 0) || w <= 0 {
		return TypeUnspecified, 0, fmt.Errorf("event type %q: want view, cart, purchase, wishlist, not_interested, rating:<1-5> or a positive weight", s)
	}
	return Custom, float32(w), nil
}

// Event is one thing a user did with an item.
type Event struct {
	ID       string    // producer's id; retries share it
	UserID   string    // shop's user id
	ItemID   string    // shop's item id
	Type     Type      // what happened
	Time     time.Time // when it happened
	Quantity int32     // units; 0 means 1
	Weight   float32   // the weight of Custom, the rating (1 to 5) of Rating
	// Category is the category a NotInterested event with an empty ItemID
	// dismisses.
	Category string
	// Matches are what a Search event's query matched in the catalog:
	// SearchMatch keys, newline-separated (a string keeps Event
	// comparable); the query itself is not kept.
	Matches string
}

// SearchMatch is the key a search affinity is stored under: the attribute
// ("category", "brand", ...) and the value, separated by a NUL byte.
func SearchMatch(attribute, value string) string { return attribute + "\x00" + value }

// CutSearchMatch splits a SearchMatch key.
func CutSearchMatch(key string) (attribute, value string, ok bool) {
	return strings.Cut(key, "\x00")
}

// Weighting turns events into implicit-feedback strengths. The zero value is
// not useful; start from DefaultWeighting.
//
// A model records the Weighting it was trained with (its JSON form is part of
// the model artifact's header), and the server folds in with the model's.
type Weighting struct {
	View      float64 `json:"view"`     // weight of a VIEW
	AddToCart float64 `json:"cart"`     // weight of an ADD_TO_CART
	Purchase  float64 `json:"purchase"` // weight of a PURCHASE
	Wishlist  float64 `json:"wishlist"` // weight of a WISHLIST
	// Rating is the weight of a 5-star RATING; a rating r above
	// NeutralRating weighs Rating × (r − 3)/2, the others 0.
	Rating   float64       `json:"rating"`
	HalfLife time.Duration `json:"half_life"` // age at which an event counts half (nanoseconds in JSON); 0 disables decay
	// MaxQuantity caps the quantity multiplier so one bulk order does not
	// drown a profile.
	MaxQuantity int32 `json:"max_quantity"`
}

// DefaultWeighting is view 1, cart 3, purchase 5, wishlist 2, a 5-star
// rating 4, a 30-day half-life and quantities counted up to 5.
func DefaultWeighting() Weighting {
	return Weighting{View: 1, AddToCart: 3, Purchase: 5, Wishlist: DefaultWishlistWeight, Rating: DefaultRatingWeight,
		HalfLife: 30 * 24 * time.Hour, MaxQuantity: 5}
}

// Default weights of the event types added after the first models: a model
// recorded without them (both 0) folds in with these.
const (
	DefaultWishlistWeight = 2
	DefaultRatingWeight   = 4
)

// WithNewDefaults returns w with the wishlist and rating weights set to
// their defaults when both are 0, as in a model recorded before they
// existed.
func (w Weighting) WithNewDefaults() Weighting {
	if w.Wishlist == 0 && w.Rating == 0 {
		w.Wishlist, w.Rating = DefaultWishlistWeight, DefaultRatingWeight
	}
	return w
}

// Validate reports a configuration that would produce negative, NaN or
// infinite weights.
func (w Weighting) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"view", w.View}, {"cart", w.AddToCart}, {"purchase", w.Purchase}, {"wishlist", w.Wishlist}, {"rating", w.Rating}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < 0 {
			return fmt.Errorf("weight of %s must be a finite number >= 0, got %v", f.name, f.v)
		}
	}
	if w.HalfLife < 0 {
		return fmt.Errorf("half-life must be >= 0, got %v", w.HalfLife)
	}
	if w.MaxQuantity < 1 {
		return fmt.Errorf("max quantity must be >= 1, got %d", w.MaxQuantity)
	}
	return nil
}

// Base is the undecayed weight of e: the per-type weight (or e.Weight for
// Custom) times the quantity, capped at MaxQuantity (a Rating's weight
// depends on the rating only). Impressions, pushes, searches, dismissals and
// unknown types weigh 0.
func (w Weighting) Base(e Event) float64 {
	var base float64
	switch e.Type {
	case View:
		base = w.View
	case AddToCart:
		base = w.AddToCart
	case Purchase:
		base = w.Purchase
	case Custom:
		base = float64(e.Weight)
	case Wishlist:
		base = w.Wishlist
	case Rating:
		if e.Weight <= NeutralRating {
			return 0
		}
		return w.Rating * (float64(min(e.Weight, MaxRating)) - NeutralRating) / (MaxRating - NeutralRating)
	default: // Impression, Push, Search and NotInterested are deliberately not signals
		return 0
	}
	q := e.Quantity
	if q < 1 {
		q = 1
	}
	if w.MaxQuantity > 0 && q > w.MaxQuantity {
		q = w.MaxQuantity
	}
	return base * float64(q)
}

// Decay is the factor 2^(-age/HalfLife) an event of the given age is
// multiplied by. Events from the future (clock skew) count fully.
func (w Weighting) Decay(age time.Duration) float64 {
	if w.HalfLife <= 0 || age <= 0 {
		return 1
	}
	return math.Exp2(-float64(age) / float64(w.HalfLife))
}

// Of is the weight e contributes at time now: Base(e) * Decay(now - e.Time).
func (w Weighting) Of(e Event, now time.Time) float64 {
	b := w.Base(e)
	if b == 0 {
		return 0
	}
	return b * w.Decay(now.Sub(e.Time))
}
