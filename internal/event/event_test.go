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
	if (Type(6)).Valid() {
		t.Error("type 6 is valid")
	}
}
