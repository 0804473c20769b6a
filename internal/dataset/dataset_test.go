package dataset_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/dataset"
	"github.com/recsys-dev/recsys/internal/event"
)

// read collects the events of input.
func read(t *testing.T, input string, f dataset.Format, opts dataset.Options) ([]event.Event, dataset.Stats, error) {
	t.Helper()
	var got []event.Event
	st, err := dataset.Read(context.Background(), strings.NewReader(input), f, opts, func(e event.Event) error {
		got = append(got, e)
		return nil
	})
	return got, st, err
}

// sameEvents compares events field by field, times by instant.
func sameEvents(t *testing.T, got, want []event.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d:\ngot  %v\nwant %v", len(got), len(want), got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if !g.Time.Equal(w.Time) {
			t.Errorf("event %d: got time %v, want %v", i, g.Time, w.Time)
		}
		g.Time, w.Time = time.Time{}, time.Time{}
		if g != w {
			t.Errorf("event %d:\ngot  %+v\nwant %+v", i, g, w)
		}
	}
}

// withoutIDs clears the ids so that tests of derived ids can compare the rest.
func withoutIDs(es []event.Event) []event.Event {
	out := make([]event.Event, len(es))
	for i, e := range es {
		e.ID = ""
		out[i] = e
	}
	return out
}

var derivedID = regexp.MustCompile(`^[0-9a-f]{32}(-[0-9]+)?$`)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestReadCSV(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []event.Event
	}{
		{
			name: "columns in any order, extra columns, event_id and quantity",
			input: "timestamp,extra,event_type,item_id,user_id,event_id,quantity\n" +
				"2024-03-01T12:00:00Z,x,view,i1,u1,e1,\n" +
				"1709294400,y,cart,i2,u1,e2,2\n" +
				"1709294400.25,z,PURCHASE,i2,u1,e3,0\n" +
				"2024-03-01T13:00:00.5+01:00,,4.5,i3,u2,e4,1\n",
			want: []event.Event{
				{ID: "e1", UserID: "u1", ItemID: "i1", Type: event.View, Time: utc("2024-03-01T12:00:00Z")},
				{ID: "e2", UserID: "u1", ItemID: "i2", Type: event.AddToCart, Time: utc("2024-03-01T12:00:00Z"), Quantity: 2},
				{ID: "e3", UserID: "u1", ItemID: "i2", Type: event.Purchase, Time: utc("2024-03-01T12:00:00.25Z")},
				{ID: "e4", UserID: "u2", ItemID: "i3", Type: event.Custom, Weight: 4.5, Time: utc("2024-03-01T12:00:00.5Z"), Quantity: 1},
			},
		},
		{
			name: "BOM, CRLF, quoted fields, padding, blank lines",
			input: "\ufeffUser_ID , item_id,event_type,timestamp,event_id\r\n" +
				"\"u,1\",\"i \"\"2\"\"\", add_to_cart ,1,a\r\n" +
				"\r\n" +
				"\"multi\nline\",i3,buy,2,b\r\n",
			want: []event.Event{
				{ID: "a", UserID: "u,1", ItemID: `i "2"`, Type: event.AddToCart, Time: time.Unix(1, 0).UTC()},
				{ID: "b", UserID: "multi\nline", ItemID: "i3", Type: event.Purchase, Time: time.Unix(2, 0).UTC()},
			},
		},
		{
			name:  "header only",
			input: "user_id,item_id,event_type,timestamp\n",
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, st, err := read(t, tt.input, dataset.CSV, dataset.Options{})
			if err != nil {
				t.Fatal(err)
			}
			sameEvents(t, got, tt.want)
			if st.Events != int64(len(tt.want)) || st.Rows != int64(len(tt.want)) || st.Skipped != 0 {
				t.Errorf("got stats %+v, want %d rows and events, 0 skipped", st, len(tt.want))
			}
		})
	}
}

func TestReadCSVDerivedIDs(t *testing.T) {
	input := "user_id,item_id,event_type,timestamp,quantity,event_id\n" +
		"u1,i1,view,100,,\n" +
		"u1,i1,view,100,,\n" + // exact duplicate: a second, distinct id
		"u1,i1,view,100,2,\n" + // another quantity: another event
		"u1,i1,view,101,,given\n" +
		"u1,i1,view,100,,\n" // third copy
	first, _, err := read(t, input, dataset.CSV, dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := read(t, input, dataset.CSV, dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range first {
		if first[i].ID != again[i].ID {
			t.Errorf("event %d: id %q on the first read, %q on the second", i, first[i].ID, again[i].ID)
		}
	}
	ids := make([]string, len(first))
	for i, e := range first {
		ids[i] = e.ID
	}
	if ids[3] != "given" {
		t.Errorf("got id %q for a row with event_id, want %q", ids[3], "given")
	}
	for _, i := range []int{0, 1, 2, 4} {
		if !derivedID.MatchString(ids[i]) {
			t.Errorf("derived id %q does not look like <32 hex>[-n]", ids[i])
		}
	}
	if want := ids[0] + "-2"; ids[1] != want {
		t.Errorf("duplicate got id %q, want %q", ids[1], want)
	}
	if want := ids[0] + "-3"; ids[4] != want {
		t.Errorf("third copy got id %q, want %q", ids[4], want)
	}
	if ids[2] == ids[0] || strings.HasPrefix(ids[2], ids[0]) {
		t.Errorf("row with another quantity got id %q, too close to %q", ids[2], ids[0])
	}
}

func TestReadCSVErrors(t *testing.T) {
	const header = "user_id,item_id,event_type,timestamp,quantity\n"
	tests := []struct {
		name    string
		input   string
		wantErr string // substring
		rowErr  bool   // a *RowError at line 2 (skippable)
	}{
		{"empty input", "", "empty input", false},
		{"missing columns", "user_id,item_id,timestamp\nu,i,1\n", "missing column(s) event_type", false},
		{"duplicate column", "user_id,item_id,event_type,timestamp,user_id\n", `column "user_id" appears twice`, false},
		{"unknown type", header + "u,i,like,1,\n", `data.csv:2: event_type "like"`, true},
		{"zero weight", header + "u,i,0,1,\n", `data.csv:2: event_type "0"`, true},
		{"bad time", header + "u,i,view,yesterday,\n", `data.csv:2: timestamp "yesterday": want RFC 3339`, true},
		{"milliseconds", header + "u,i,view,1709294400000,\n", "not milliseconds", true},
		{"empty time", header + "u,i,view,,\n", "data.csv:2: timestamp: empty", true},
		{"empty user", header + " ,i,view,1,\n", "data.csv:2: user_id: empty", true},
		{"empty item", header + "u,,view,1,\n", "data.csv:2: item_id: empty", true},
		{"negative quantity", header + "u,i,view,1,-1\n", `data.csv:2: quantity "-1"`, true},
		{"too few fields", header + "u,i,view,1\n", "has 4 fields, the header has 5", true},
		{"bare quote", header + "u,i\"x,view,1,\n", `bare "`, true},
		{"carriage return in an id", header + "u\r1,i,view,1,\n", `data.csv:2: user_id "u\r1": holds a carriage return`, true},
		{"quoted carriage return", header + "u,\"i\rx\",view,1,\n", `data.csv:2: item_id "i\rx": holds a carriage return`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := read(t, tt.input, dataset.CSV, dataset.Options{Name: "data.csv"})
			if err == nil {
				t.Fatalf("got no error, want one containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %q, want it to contain %q", err, tt.wantErr)
			}
			var re *dataset.RowError
			if got := errors.As(err, &re); got != tt.rowErr {
				t.Fatalf("got RowError %v, want %v (%v)", got, tt.rowErr, err)
			}
			if tt.rowErr && (re.Line != 2 || re.File != "data.csv") {
				t.Errorf("got position %s:%d, want data.csv:2", re.File, re.Line)
			}
		})
	}
}

func TestReadSkipBadRows(t *testing.T) {
	input := "user_id,item_id,event_type,timestamp\n" +
		"u1,i1,view,1\n" +
		"u1,i2,like,2\n" +
		"u2,i1,cart,3\n" +
		"u2,,view,4\n" +
		"u3,i3,purchase,5\n"
	for _, tt := range []struct {
		maxErrors, wantKept int
	}{{0, 2}, {1, 1}} {
		t.Run(fmt.Sprint("max errors ", tt.maxErrors), func(t *testing.T) {
			got, st, err := read(t, input, dataset.CSV, dataset.Options{SkipBadRows: true, MaxErrors: tt.maxErrors})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 || st.Events != 3 || st.Rows != 5 || st.Skipped != 2 {
				t.Errorf("got %d events and stats %+v, want 3 events of 5 rows, 2 skipped", len(got), st)
			}
			if len(st.FirstErrors) != tt.wantKept {
				t.Fatalf("got %d errors kept, want %d", len(st.FirstErrors), tt.wantKept)
			}
			for i, wantLine := range []int64{3, 5}[:tt.wantKept] {
				var re *dataset.RowError
				if !errors.As(st.FirstErrors[i], &re) || re.Line != wantLine {
					t.Errorf("error %d: got %v, want a row error at line %d", i, st.FirstErrors[i], wantLine)
				}
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "0", want: time.Unix(0, 0)},
		{in: "1709294400", want: time.Unix(1709294400, 0)},
		{in: "1709294400.5", want: time.Unix(1709294400, 5e8)},
		{in: "1.000000001", want: time.Unix(1, 1)},
		{in: "1.0000000019", want: time.Unix(1, 1)}, // below a nanosecond is cut
		{in: "2024-03-01T12:00:00Z", want: time.Unix(1709294400, 0)},
		{in: "2024-03-01T14:00:00.000000002+02:00", want: time.Unix(1709294400, 2)},
		{in: "253402300799", want: time.Unix(253402300799, 0)},
		{in: "253402300800", bad: true},
		{in: "-1", bad: true},
		{in: "1.", bad: true},
		{in: ".5", bad: true},
		{in: "1.2.3", bad: true},
		{in: "2024-03-01 12:00:00", bad: true},
		{in: "0001-01-01T00:00:00.000000001Z", want: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)},
		{in: "9999-12-31T23:59:59.999999999Z", want: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
		{in: "0000-01-01T00:00:00Z", bad: true},      // year 0 (found by FuzzReadCSV)
		{in: "0001-01-01T00:00:00Z", bad: true},      // the zero time, "unset"
		{in: "0001-01-01T00:30:00+01:00", bad: true}, // year 0 in UTC
		{in: "9999-12-31T23:30:00-01:00", bad: true}, // year 10000 in UTC
		{in: "", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := dataset.ParseTime(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("got %v, want %v in UTC", got, tt.want.UTC())
			}
		})
	}
}

func TestCSVWriterRoundTrip(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	want := []event.Event{
		{ID: "e1", UserID: "u1", ItemID: "i1", Type: event.View, Time: time.Date(2024, 3, 1, 12, 0, 0, 123456789, time.UTC), Quantity: 1},
		{ID: "e,2", UserID: `u "q"`, ItemID: "line\nbreak", Type: event.AddToCart, Time: time.Date(2024, 3, 1, 13, 0, 0, 0, berlin), Quantity: 3},
		{ID: "e3", UserID: "ü-ñ 中", ItemID: "i 2", Type: event.Purchase, Time: time.Unix(0, 0)},
		{ID: "e4", UserID: "u1", ItemID: "i1", Type: event.Custom, Weight: 0.1, Time: time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC)},
		{ID: "e5", UserID: "u1", ItemID: "i1", Type: event.Custom, Weight: 1e20, Time: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
	}
	var buf bytes.Buffer
	w := dataset.NewCSVWriter(&buf)
	for _, e := range want {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, _, err := read(t, buf.String(), "", dataset.Options{})
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	sameEvents(t, got, want)
}

func TestCSVWriterEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := dataset.NewCSVWriter(&buf).Flush(); err != nil {
		t.Fatal(err)
	}
	got, st, err := read(t, buf.String(), dataset.CSV, dataset.Options{})
	if err != nil || len(got) != 0 || st.Rows != 0 {
		t.Errorf("got %d events, %+v, %v from %q; want a valid empty file", len(got), st, err, buf.String())
	}
}

func TestCSVWriterRejects(t *testing.T) {
	ok := event.Event{ID: "e", UserID: "u", ItemID: "i", Type: event.View, Time: time.Unix(1, 0)}
	tests := []struct {
		name   string
		change func(*event.Event)
	}{
		{"empty user", func(e *event.Event) { e.UserID = "" }},
		{"empty item", func(e *event.Event) { e.ItemID = "" }},
		{"padded user", func(e *event.Event) { e.UserID = " u" }},
		{"padded id", func(e *event.Event) { e.ID = "e " }},
		{"carriage return", func(e *event.Event) { e.ItemID = "a\rb" }},
		{"unspecified type", func(e *event.Event) { e.Type = event.TypeUnspecified }},
		{"unknown type", func(e *event.Event) { e.Type = 42 }},
		{"weight on a view", func(e *event.Event) { e.Weight = 2 }},
		{"custom without weight", func(e *event.Event) { e.Type = event.Custom }},
		{"negative weight", func(e *event.Event) { e.Type, e.Weight = event.Custom, -1 }},
		{"negative quantity", func(e *event.Event) { e.Quantity = -1 }},
		{"zero time", func(e *event.Event) { e.Time = time.Time{} }},
		{"year 10000", func(e *event.Event) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok
			tt.change(&e)
			var buf bytes.Buffer
			w := dataset.NewCSVWriter(&buf)
			if err := w.Write(e); err == nil {
				t.Errorf("got no error writing %+v", e)
			}
			if err := w.Write(ok); err != nil {
				t.Errorf("a good event after a rejected one: %v", err)
			}
		})
	}
}

func TestReadMovieLens(t *testing.T) {
	want := []event.Event{
		{UserID: "196", ItemID: "242", Type: event.Custom, Weight: 3, Time: time.Unix(881250949, 0).UTC()},
		{UserID: "186", ItemID: "302", Type: event.Custom, Weight: 4.5, Time: time.Unix(891717742, 0).UTC()},
		{UserID: "22", ItemID: "377", Type: event.Custom, Weight: 1, Time: time.Unix(878887116, 0).UTC()},
	}
	inputs := map[string]string{
		"u.data":      "196\t242\t3\t881250949\n186\t302\t4.5\t891717742\n22\t377\t1\t878887116\n",
		"ratings.dat": "196::242::3::881250949\r\n186::302::4.5::891717742\r\n22::377::1::878887116\r\n",
		"ratings.csv": "userId,movieId,rating,timestamp\n196,242,3.0,881250949\n186,302,4.5,891717742\n\n22,377,1.0,878887116\n",
	}
	for name, input := range inputs {
		t.Run(name, func(t *testing.T) {
			for _, f := range []dataset.Format{dataset.MovieLens, ""} {
				got, st, err := read(t, input, f, dataset.Options{})
				if err != nil {
					t.Fatal(err)
				}
				sameEvents(t, withoutIDs(got), want)
				if st.Rows != 3 || st.Events != 3 {
					t.Errorf("got %+v, want 3 rows and events", st)
				}
			}
			got, st, err := read(t, input, dataset.MovieLens, dataset.Options{MinRating: 4})
			if err != nil {
				t.Fatal(err)
			}
			sameEvents(t, withoutIDs(got), want[1:2])
			if st.Rows != 3 || st.Filtered != 2 || st.Skipped != 0 {
				t.Errorf("min rating 4: got %+v, want 3 rows, 2 filtered", st)
			}
		})
	}
}

func TestReadMovieLensErrors(t *testing.T) {
	tests := []struct {
		name, input, wantErr string
	}{
		{"bad rating", "1\t2\tfive\t3\n", `u.data:1: rating "five": want a number > 0`},
		{"zero rating", "1\t2\t1\t3\n1\t2\t0\t3\n", `u.data:2: rating "0"`},
		{"bad timestamp", "1\t2\t3\t2020-01-01\n", `u.data:1: timestamp "2020-01-01"`},
		{"field count", "1::2::3::4\n1::2::3\n", "u.data:2: row \"1::2::3\": has 3 fields, want 4"},
		{"empty user", "\t2\t3\t4\n", "u.data:1: user: empty"},
		{"not movielens", "hello\n", "u.data:1: not a MovieLens rating line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := read(t, tt.input, dataset.MovieLens, dataset.Options{Name: "u.data"})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestReadSequence(t *testing.T) {
	input := "1 10 11 10\n\n2\t11\r\n3\n"
	base := time.Date(2014, 5, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		opts dataset.Options
		base time.Time
		step time.Duration
	}{
		{"defaults", dataset.Options{}, dataset.DefaultBaseTime(), time.Minute},
		{"base and step", dataset.Options{BaseTime: base, SequenceStep: time.Hour}, base, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, st, err := read(t, input, dataset.Sequence, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			at := func(k int) time.Time { return tt.base.Add(time.Duration(k) * tt.step) }
			sameEvents(t, withoutIDs(got), []event.Event{
				{UserID: "1", ItemID: "10", Type: event.Purchase, Time: at(0)},
				{UserID: "1", ItemID: "11", Type: event.Purchase, Time: at(1)},
				{UserID: "1", ItemID: "10", Type: event.Purchase, Time: at(2)},
				{UserID: "2", ItemID: "11", Type: event.Purchase, Time: at(0)},
			})
			if st.Rows != 3 || st.Events != 4 {
				t.Errorf("got %+v, want 3 rows (users), 4 events", st)
			}
		})
	}
}

func TestReadBasket(t *testing.T) {
	input := `{"7": [[1, 2], [], ["a", 3]],
 "1": [[2]]}`
	got, st, err := read(t, input, "", dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	day := func(k int) time.Time { return dataset.DefaultBaseTime().Add(time.Duration(k) * 24 * time.Hour) }
	sameEvents(t, withoutIDs(got), []event.Event{
		{UserID: "7", ItemID: "1", Type: event.Purchase, Time: day(0)},
		{UserID: "7", ItemID: "2", Type: event.Purchase, Time: day(0)},
		{UserID: "7", ItemID: "a", Type: event.Purchase, Time: day(2)},
		{UserID: "7", ItemID: "3", Type: event.Purchase, Time: day(2)},
		{UserID: "1", ItemID: "2", Type: event.Purchase, Time: day(0)},
	})
	if st.Rows != 4 || st.Events != 5 {
		t.Errorf("got %+v, want 4 rows (baskets), 5 events", st)
	}
}

func TestReadBasketBadValues(t *testing.T) {
	input := `{"1": [[1, {"x": [1]}, true, 1.5, 2], 5, [3]], "2": {"a": [1]}, "": [[9]], "3": [[4]]}`
	_, _, err := read(t, input, dataset.Basket, dataset.Options{Name: "b.json"})
	if err == nil || !strings.Contains(err.Error(), `b.json: after byte 9: user "1" basket 0 item 1: want an item`) {
		t.Errorf("strict: got error %v, want the object item named", err)
	}
	got, st, err := read(t, input, dataset.Basket, dataset.Options{Name: "b.json", SkipBadRows: true, MaxErrors: 100})
	if err != nil {
		t.Fatal(err)
	}
	day := func(k int) time.Time { return dataset.DefaultBaseTime().Add(time.Duration(k) * 24 * time.Hour) }
	sameEvents(t, withoutIDs(got), []event.Event{
		{UserID: "1", ItemID: "1", Type: event.Purchase, Time: day(0)},
		{UserID: "1", ItemID: "2", Type: event.Purchase, Time: day(0)},
		{UserID: "1", ItemID: "3", Type: event.Purchase, Time: day(2)},
		{UserID: "3", ItemID: "4", Type: event.Purchase, Time: day(0)},
	})
	// {"x":[1]}, true, 1.5, the basket 5, user 2's object, the empty user.
	if st.Skipped != 6 || len(st.FirstErrors) != 6 {
		t.Errorf("got %d skipped, %d errors (%v), want 6", st.Skipped, len(st.FirstErrors), st.FirstErrors)
	}
}

func TestReadBasketErrors(t *testing.T) {
	tests := []struct {
		name, input, wantErr string
	}{
		{"not an object", `[1]`, "want \"{\""},
		{"syntax", `{"1": [[1,}`, "b.json: after byte 9: JSON: invalid character"},
		{"truncated", `{"1": [[1`, "unexpected end of JSON"},
		{"trailing data", `{} {}`, "unexpected data after the top-level object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// SkipBadRows does not skip damage that makes the rest unreadable.
			_, _, err := read(t, tt.input, dataset.Basket, dataset.Options{Name: "b.json", SkipBadRows: true})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestReadDiginetica(t *testing.T) {
	input := "session_id;user_id;item_id;timeframe;eventdate\n" +
		"1;NA;81766;526309;2016-05-09\n" +
		"48;2;24764;8863;2016-04-09\n"
	got, _, err := read(t, input, "", dataset.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sameEvents(t, withoutIDs(got), []event.Event{
		{UserID: "s:1", ItemID: "81766", Type: event.View, Time: utc("2016-05-09T00:08:46.309Z")},
		{UserID: "2", ItemID: "24764", Type: event.View, Time: utc("2016-04-09T00:00:08.863Z")},
	})

	for _, tt := range []struct{ row, wantErr string }{
		{"1;NA;5;10;09.05.2016", `d.csv:2: eventdate "09.05.2016"`},
		{"1;NA;5;-3;2016-05-09", `d.csv:2: timeframe "-3"`},
		{";NA;5;1;2016-05-09", "d.csv:2: session_id: empty"},
		{"1;NA;5;0;0000-01-01", `d.csv:2: eventdate "0000-01-01": out of range`},
		{"1;NA;5;31535999999;9999-12-31", `d.csv:2: eventdate "9999-12-31": out of range`},
	} {
		_, _, err := read(t, "session_id;user_id;item_id;timeframe;eventdate\n"+tt.row+"\n", dataset.Diginetica, dataset.Options{Name: "d.csv"})
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("row %q: got error %v, want one containing %q", tt.row, err, tt.wantErr)
		}
	}
}

func TestDetect(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write([]byte("user_id,item_id,event_type,timestamp\nu,i,view,1\n")); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content string
		want    dataset.Format
	}{
		{"events.csv", "user_id,item_id,event_type,timestamp\nu,i,view,1\n", dataset.CSV},
		{"events-bom.csv", "\ufeffevent_id,timestamp,user_id,item_id,event_type\ne,1,u,i,view\n", dataset.CSV},
		{"events.csv.gz", gz.String(), dataset.CSV},
		{"u.data", "196\t242\t3\t881250949\n", dataset.MovieLens},
		{"ratings.dat", "1::1193::5::978300760\n", dataset.MovieLens},
		{"ratings.csv", "userId,movieId,rating,timestamp\n1,2,3.5,4\n", dataset.MovieLens},
		{"Beauty.txt", "1 1 2 3\n2 4 5\n", dataset.Sequence},
		{"tabbed.txt", "1\t1\t2\n", dataset.Sequence}, // three TAB fields: not u.data
		{"baskets.json", "\n  {\"1\": [[1]]}", dataset.Basket},
		{"bom.json", "\ufeff{\"1\": [[1]]}", dataset.Basket},
		{"bom.txt", "\ufeff1 2 3\n", dataset.Sequence},
		{"bom.data", "\ufeff196\t242\t3\t881250949\n", dataset.MovieLens},
		{"views.csv", "session_id;user_id;item_id;timeframe;eventdate\n1;NA;2;3;2016-05-09\n", dataset.Diginetica},
		{"empty", "", ""},
		{"blank", " \n\n", ""},
		{"one token", "hello\n", ""},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name)
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := dataset.Detect(path)
			if tt.want == "" {
				if err == nil {
					t.Errorf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
			// ReadFile with detection reads it.
			st, err := dataset.ReadFile(context.Background(), path, "", dataset.Options{}, func(event.Event) error { return nil })
			if err != nil || st.Events == 0 {
				t.Errorf("ReadFile: got %+v, %v; want events", st, err)
			}
		})
	}
	if _, err := dataset.Detect(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: got %v, want ErrNotExist", err)
	}
}

func TestReadStops(t *testing.T) {
	var b strings.Builder
	for u := range 3000 {
		fmt.Fprintf(&b, "%d 1 2\n", u)
	}
	input := b.String()

	t.Run("canceled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		st, err := dataset.Read(ctx, strings.NewReader(input), dataset.Sequence, dataset.Options{}, func(event.Event) error { return nil })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		if st.Rows >= 3000 {
			t.Errorf("read all %d rows despite the canceled context", st.Rows)
		}
	})
	t.Run("callback error", func(t *testing.T) {
		stop := errors.New("stop")
		st, err := dataset.Read(context.Background(), strings.NewReader(input), dataset.Sequence, dataset.Options{Name: "seq.txt"},
			func(e event.Event) error {
				if e.UserID == "1" && e.ItemID == "2" {
					return stop
				}
				return nil
			})
		if !errors.Is(err, stop) || !strings.Contains(err.Error(), "seq.txt:2:") {
			t.Errorf("got %v, want the callback's error at seq.txt:2", err)
		}
		if st.Events != 4 {
			t.Errorf("got %d events handed out, want 4", st.Events)
		}
	})
	t.Run("no callback", func(t *testing.T) {
		if _, err := dataset.Read(context.Background(), strings.NewReader(input), dataset.Sequence, dataset.Options{}, nil); err == nil {
			t.Error("got no error without a callback")
		}
	})
	t.Run("unknown format", func(t *testing.T) {
		if _, err := dataset.Read(context.Background(), strings.NewReader(input), "parquet", dataset.Options{}, func(event.Event) error { return nil }); err == nil {
			t.Error("got no error for an unknown format")
		}
	})
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in   string
		want dataset.Format
		bad  bool
	}{
		{in: "", want: ""},
		{in: "auto", want: ""},
		{in: " MovieLens ", want: dataset.MovieLens},
		{in: "basket", want: dataset.Basket},
		{in: "parquet", bad: true},
	}
	for _, tt := range tests {
		got, err := dataset.ParseFormat(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

// TestReadBOM checks that a byte order mark does not end up in the first id.
func TestReadBOM(t *testing.T) {
	for _, tt := range []struct {
		input string
		f     dataset.Format
	}{
		{"\ufeff1 2\n", dataset.Sequence},
		{"\ufeff1\t2\t3\t4\n", dataset.MovieLens},
		{"\ufeff{\"1\": [[2]]}", dataset.Basket},
		{"\ufeffuser_id,item_id,event_type,timestamp\n1,2,view,4\n", dataset.CSV},
	} {
		got, _, err := read(t, tt.input, "", dataset.Options{})
		if err != nil {
			t.Fatalf("%s: %v", tt.f, err)
		}
		if len(got) != 1 || got[0].UserID != "1" || got[0].ItemID != "2" {
			t.Errorf("%s: got %+v, want user 1, item 2", tt.f, got)
		}
	}
}
