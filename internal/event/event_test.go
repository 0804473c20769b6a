package event

import (
	"testing"
	"time"
)

func TestImpressionWeighsNothing(t *testing.T) {
	for _, s := range []string{"impression", "Shown"} {
		typ, w, err := ParseType(s)
		if err != nil || typ != Impression || w != 0 {
			t.Errorf("ParseType(%q) = %v, %v, %v; want Impression", s, typ, w, err)
		}
	}
	if !Impression.Valid() || Impression.Click() || !View.Click() || Impression.String() != "impression" {
		t.Errorf("Impression: valid %v click %v name %q", Impression.Valid(), Impression.Click(), Impression.String())
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := DefaultWeighting().Of(Event{Type: Impression, Quantity: 3, Time: now}, now); got != 0 {
		t.Errorf("weight of an impression = %v, want 0", got)
	}
	if (Type(Wishlist + 1)).Valid() {
		t.Errorf("type %d is valid", Wishlist+1)
	}
}

func TestPushWeighsNothing(t *testing.T) {
	typ, w, err := ParseType("push")
	if err != nil || typ != Push || w != 0 {
		t.Errorf(`ParseType("push") = %v, %v, %v; want Push`, typ, w, err)
	}
	if !Push.Valid() || Push.Click() || Push.String() != "push" || Push.Streamed() {
		t.Errorf("Push: valid %v click %v name %q", Push.Valid(), Push.Click(), Push.String())
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := DefaultWeighting().Of(Event{Type: Push, Quantity: 3, Time: now}, now); got != 0 {
		t.Errorf("a push weighs %v, want 0", got)
	}
}

func TestSignalTypes(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := DefaultWeighting()
	for _, tc := range []struct {
		name     string
		e        Event
		want     float64
		streamed bool
	}{
		{"wishlist of 3", Event{Type: Wishlist, Quantity: 3}, 3 * w.Wishlist, true},
		{"rating 5", Event{Type: Rating, Weight: 5}, w.Rating, true},
		{"rating 4", Event{Type: Rating, Weight: 4}, w.Rating / 2, true},
		{"rating 3", Event{Type: Rating, Weight: 3}, 0, true},
		{"rating 1", Event{Type: Rating, Weight: 1}, 0, true},
		{"search", Event{Type: Search}, 0, false},
		{"not interested", Event{Type: NotInterested}, 0, false},
	} {
		tc.e.Time = now
		if got := w.Of(tc.e, now); got != tc.want {
			t.Errorf("%s weighs %v, want %v", tc.name, got, tc.want)
		}
		if got := tc.e.Type.Streamed(); got != tc.streamed || !tc.e.Type.Valid() {
			t.Errorf("%s: streamed %v valid %v, want streamed %v", tc.name, got, tc.e.Type.Valid(), tc.streamed)
		}
	}
	for _, tc := range []struct {
		in   string
		typ  Type
		w    float32
		fail bool
	}{
		{"wishlist", Wishlist, 0, false}, {"Not_Interested", NotInterested, 0, false},
		{"rating:4.5", Rating, 4.5, false}, {"rating:0", 0, 0, true}, {"rating:6", 0, 0, true}, {"rating:x", 0, 0, true},
	} {
		typ, wt, err := ParseType(tc.in)
		if (err != nil) != tc.fail || (!tc.fail && (typ != tc.typ || wt != tc.w)) {
			t.Errorf("ParseType(%q) = %v, %v, %v", tc.in, typ, wt, err)
		}
	}
	// A model recorded before these types gets the default weights.
	old := Weighting{View: 1, AddToCart: 3, Purchase: 5, MaxQuantity: 5}.WithNewDefaults()
	if old.Wishlist != DefaultWishlistWeight || old.Rating != DefaultRatingWeight {
		t.Errorf("old weighting with new defaults: %+v", old)
	}
}
