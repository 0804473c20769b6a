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
	if (Type(7)).Valid() {
		t.Error("type 7 is valid")
	}
}

func TestPushWeighsNothing(t *testing.T) {
	typ, w, err := ParseType("push")
	if err != nil || typ != Push || w != 0 {
		t.Errorf(`ParseType("push") = %v, %v, %v; want Push`, typ, w, err)
	}
	if !Push.Valid() || Push.Click() || Push.String() != "push" || Type(Push+1).Valid() {
		t.Errorf("Push: valid %v click %v name %q", Push.Valid(), Push.Click(), Push.String())
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := DefaultWeighting().Of(Event{Type: Push, Quantity: 3, Time: now}, now); got != 0 {
		t.Errorf("a push weighs %v, want 0", got)
	}
}
