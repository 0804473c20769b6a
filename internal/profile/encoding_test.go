package profile

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

func TestEntryRoundTrip(t *testing.T) {
	tests := []event.Event{
		{ItemID: "i", Type: event.View, Time: t0},
		{ItemID: "a|b:c{d}e f\ng", Type: event.Purchase, Time: t0, Quantity: 12},
		{ItemID: "x", Type: event.Custom, Time: t0, Weight: 0.1},
		{ItemID: "neg", Type: event.AddToCart, Time: time.UnixMilli(-86_400_123).UTC(), Quantity: math.MaxInt32},
		{ItemID: strings.Repeat("é", 128), Type: event.Custom, Time: time.UnixMilli(0).UTC(), Quantity: 1, Weight: math.MaxFloat32},
	}
	for _, e := range tests {
		b := appendEntry(nil, e)
		got, err := decodeEntry(b)
		if err != nil {
			t.Errorf("decode %+v: %v", e, err)
			continue
		}
		if want := entryOf(e); !sameEntry(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
	// The size the package comment promises: a view of a 10-byte id.
	if got := len(appendEntry(nil, event.Event{ItemID: "0123456789", Type: event.View, Time: t0})); got != 17 {
		t.Errorf("encoded view of a 10-byte id: got %d bytes, want 17", got)
	}
}

func TestDecodeEntryRejectsCorrupt(t *testing.T) {
	valid := appendEntry(nil, event.Event{ItemID: "i", Type: event.Custom, Time: t0, Quantity: 2, Weight: 1})
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"one byte", []byte{1}},
		{"reserved bits", append([]byte{valid[0] | 0x40}, valid[1:]...)},
		{"type 0", append([]byte{valid[0] &^ entryTypeMask}, valid[1:]...)},
		{"unknown type", append([]byte{valid[0] | entryTypeMask}, valid[1:]...)},
		{"truncated time", []byte{byte(event.View), 0x80}},
		{"truncated weight", valid[:len(valid)-3]},
		{"no item id", valid[:len(valid)-1]},
	}
	for _, tc := range tests {
		if _, err := decodeEntry(tc.b); !errors.Is(err, errCorruptEntry) {
			t.Errorf("%s: got %v, want a corrupt-entry error", tc.name, err)
		}
	}
}

func FuzzEntryRoundTrip(f *testing.F) {
	f.Add("item", uint8(1), int64(1_900_000_000_000), int32(0), float32(0))
	f.Add("a|b\n{c}", uint8(4), int64(-5), int32(7), float32(2.5))
	f.Fuzz(func(t *testing.T, item string, typ uint8, msTime int64, qty int32, w float32) {
		e := event.Event{ItemID: item, Type: event.Type(typ), Time: time.UnixMilli(msTime), Quantity: qty, Weight: w}
		if item == "" || !e.Type.Valid() || math.IsNaN(float64(w)) {
			return
		}
		got, err := decodeEntry(appendEntry(nil, e))
		if err != nil {
			t.Fatalf("decode %+v: %v", e, err)
		}
		if want := entryOf(e); !sameEntry(got, want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
	})
}

func TestDedupMember(t *testing.T) {
	a := dedupMember("u", "e1")
	if len(a) != dedupMemberLen {
		t.Errorf("length: got %d, want %d", len(a), dedupMemberLen)
	}
	for _, other := range [][2]string{{"u", "e2"}, {"v", "e1"}, {"ue", "1"}, {"", "ue1"}} {
		if dedupMember(other[0], other[1]) == a {
			t.Errorf("dedupMember(%q, %q) equals dedupMember(u, e1)", other[0], other[1])
		}
	}
	if dedupMember("u", "e1") != a {
		t.Error("dedupMember is not deterministic")
	}
}
