package profile

import (
	"math"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

// FuzzDecodeEntry feeds arbitrary bytes to the history-entry decoder (a
// LIST element read back from Redis): it never panics, and an entry it
// accepts encodes and decodes to itself. FuzzEntryRoundTrip (encoding_test.go)
// goes the other way, from events.
func FuzzDecodeEntry(f *testing.F) {
	for _, e := range []event.Event{
		{ItemID: "i", Type: event.View, Time: t0},
		{ItemID: "a|b:c{d}e f\ng", Type: event.Purchase, Time: t0, Quantity: 12},
		{ItemID: "x", Type: event.Custom, Time: time.UnixMilli(-86_400_123), Weight: 0.1, Quantity: math.MaxInt32},
	} {
		f.Add(appendEntry(nil, e))
	}
	f.Add([]byte{})
	f.Add([]byte{byte(event.View) | entryHasQty | entryHasWeight, 0x80})
	f.Add([]byte{byte(event.View) | entryHasQty, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 'i'})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeEntry(b)
		if err != nil {
			return
		}
		if got.ItemID == "" || !got.Type.Valid() {
			t.Fatalf("decoded an entry without item or valid type: %+v", got)
		}
		again, err := decodeEntry(appendEntry(nil, event.Event{ItemID: got.ItemID, Type: got.Type, Time: got.Time, Quantity: got.Quantity, Weight: got.Weight}))
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", got, err)
		}
		if !sameEntryBits(again, got) {
			t.Fatalf("round trip: got %+v, want %+v", again, got)
		}
	})
}

// sameEntryBits is sameEntry where a NaN weight (possible in damaged bytes)
// equals itself. -0 equals 0: appendEntry writes no weight for either
// (the corpus entry fecce1e942f04d29 is such an input).
func sameEntryBits(a, b Entry) bool {
	wa, wb := a.Weight, b.Weight
	a.Weight, b.Weight = 0, 0
	return sameEntry(a, b) && (wa == wb || (math.IsNaN(float64(wa)) && math.IsNaN(float64(wb))))
}

// streamFields are the entry's field names in the order appendStreamValues
// gives the values (and globalScript writes them).
var streamFields = []string{fieldID, fieldUser, fieldItem, fieldType, fieldTime, fieldQuantity, fieldWeight}

// FuzzParseStreamEvent feeds arbitrary field values (some missing, one of
// them perhaps not a string) to the stream-entry parser, as XRANGE could
// return them from a stream another writer damaged: it never panics, an
// event it accepts has its ids and a valid type, and the event written back
// with appendStreamValues parses to the same event.
func FuzzParseStreamEvent(f *testing.F) {
	f.Add("e1", "u1", "i1", "1", "1900000000000", "0", "0", uint8(0), uint8(255))
	f.Add("e2", "u}{x", "i", "4", "-5", "7", "2.5", uint8(0), uint8(255))
	f.Add("e3", "u", "i", "9", "x", "1e3", "NaN", uint8(0), uint8(255))
	f.Add("e4", "", "i", "3", "1", "2147483648", "+Inf", uint8(0b1000001), uint8(3))
	f.Fuzz(func(t *testing.T, id, user, item, typ, ts, qty, w string, missing, notString uint8) {
		m := map[string]any{}
		for i, v := range []string{id, user, item, typ, ts, qty, w} {
			if missing&(1<<i) == 0 {
				m[streamFields[i]] = v
			}
		}
		if int(notString) < len(streamFields) {
			m[streamFields[notString]] = int64(len(ts))
		}
		got, _, err := parseStreamEvent(m) // an entry from before pseudonyms
		if err != nil {
			return
		}
		if got.ID == "" || got.UserID == "" || got.ItemID == "" || !got.Type.Valid() {
			t.Fatalf("accepted an event without ids or a valid type: %+v", got)
		}
		if !(got.Weight >= 0) || math.IsInf(float64(got.Weight), 0) {
			t.Fatalf("accepted weight %v: the trainer needs finite, non-negative weights", got.Weight)
		}
		vals := appendStreamValues(nil, got)
		m2 := make(map[string]any, len(vals))
		for i, v := range vals {
			m2[streamFields[i]] = v
		}
		again, _, err := parseStreamEvent(m2)
		if err != nil {
			t.Fatalf("written back %v, does not parse: %v", m2, err)
		}
		gw, aw := got.Weight, again.Weight
		got.Weight, again.Weight = 0, 0
		if !again.Time.Equal(got.Time) {
			t.Fatalf("time: got %v, want %v", again.Time, got.Time)
		}
		again.Time, got.Time = time.Time{}, time.Time{}
		if again != got || !(gw == aw || (gw != gw && aw != aw)) {
			t.Fatalf("round trip: got %+v weight %v, want %+v weight %v", again, aw, got, gw)
		}
	})
}
