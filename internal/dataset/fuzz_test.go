package dataset_test

import (
	"bytes"
	"compress/gzip"
	"math"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/dataset"
	"github.com/recsys-dev/recsys/internal/event"
)

// The fuzz targets feed arbitrary bytes to each format reader. Whatever the
// input, a reader returns events or an error, never panics, and every event
// it hands out is one the service can take: non-empty ids, a valid type, a
// weight only on Custom events, a usable time. `go test` runs the seeds and
// the committed corpus in testdata/fuzz; see benchmarks/README.md for fuzzing runs.

// checkRead reads data in format f with and without SkipBadRows and checks
// every event; it returns the strict read's events when it succeeded.
func checkRead(t *testing.T, data []byte, f dataset.Format) ([]event.Event, bool) {
	t.Helper()
	var strict []event.Event
	ok := false
	for _, skip := range []bool{false, true} {
		opts := dataset.Options{SkipBadRows: skip, MaxErrors: 3}
		got, st, err := read(t, string(data), f, opts)
		if st.Events != int64(len(got)) {
			t.Fatalf("skip=%v: Stats.Events %d, callback saw %d", skip, st.Events, len(got))
		}
		if !skip && st.Skipped != 0 {
			t.Fatalf("strict read skipped %d rows", st.Skipped)
		}
		if len(st.FirstErrors) > 3 || int64(len(st.FirstErrors)) > st.Skipped {
			t.Fatalf("skip=%v: %d errors kept for %d skipped, MaxErrors 3", skip, len(st.FirstErrors), st.Skipped)
		}
		for i, e := range got {
			if msg := invalid(e); msg != "" {
				t.Fatalf("skip=%v: event %d %+v: %s", skip, i, e, msg)
			}
		}
		if !skip && err == nil {
			strict, ok = got, true
		}
	}
	return strict, ok
}

// invalid says what is wrong with an event a reader returned, or "".
func invalid(e event.Event) string {
	switch {
	case e.UserID == "":
		return "empty user id"
	case e.ItemID == "":
		return "empty item id"
	case e.ID == "":
		return "empty event id"
	case !e.Type.Valid():
		return "invalid type"
	case e.Type == event.Custom && !(e.Weight > 0 && !math.IsInf(float64(e.Weight), 0)):
		return "custom event without a finite positive weight"
	case e.Type != event.Custom && e.Weight != 0:
		return "weight on a non-custom event"
	case e.Quantity < 0:
		return "negative quantity"
	case e.Time.IsZero():
		return "zero time"
	case e.Time.UTC().Year() < 1 || e.Time.UTC().Year() > 9999:
		return "time outside years 1-9999 (RFC 3339 cannot write it)"
	}
	return ""
}

func addSeeds(f *testing.F, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
}

// writeCSV writes events with the CSVWriter.
func writeCSV(t *testing.T, es []event.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := dataset.NewCSVWriter(&buf)
	for _, e := range es {
		if err := w.Write(e); err != nil {
			t.Fatalf("the CSV reader returned an event the writer refuses: %v", err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipped(s string) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write([]byte(s))
	_ = zw.Close()
	return b.String()
}

// FuzzReadCSV also checks the writer: what the reader accepts, the writer
// writes, and that file reads back as the same events (ids included).
func FuzzReadCSV(f *testing.F) {
	good := "timestamp,extra,event_type,item_id,user_id,event_id,quantity\n" +
		"2024-03-01T12:00:00Z,x,view,i1,u1,e1,\n" +
		"1709294400,y,cart,i2,u1,e2,2\n" +
		"1709294400.25,z,PURCHASE,i2,u1,e3,0\n" +
		"2024-03-01T13:00:00.5+01:00,,4.5,i3,u2,e4,1\n"
	addSeeds(f, good, gzipped(good),
		"\ufeffUser_ID , item_id,event_type,timestamp,event_id\r\n\"u,1\",\"i \"\"2\"\"\", add_to_cart ,1,a\r\n\r\n\"multi\nline\",i3,buy,2,b\r\n",
		"user_id,item_id,event_type,timestamp,quantity,event_id\nu1,i1,view,100,,\nu1,i1,view,100,,\nu1,i1,view,101,,given\n",
		"user_id,item_id,event_type,timestamp,quantity\nu,i,like,1,\nu,i,0,1,\nu,,view,1,\nu,i,view,1709294400000,\nu,i\"x,view,1,\n",
		"user_id,item_id,timestamp\nu,i,1\n", "", "user_id,item_id,event_type,timestamp,user_id\n",
		"user_id,item_id,event_type,timestamp\nu,i,1e-45,-62135596800,\nu,i,3.4e38,253402300799.999999999\n",
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := checkRead(t, data, dataset.CSV)
		if !ok {
			return
		}
		out := writeCSV(t, got)
		back, _, err := read(t, string(out), dataset.CSV, dataset.Options{})
		if err != nil {
			t.Fatalf("reading what the writer wrote: %v\n%q", err, out)
		}
		sameEvents(t, back, got)
	})
}

// FuzzCSVWriter starts from the event: whatever the writer accepts reads
// back identically.
func FuzzCSVWriter(f *testing.F) {
	f.Add("e1", "u1", "i1", uint8(event.View), float32(0), int64(1709294400123456789), int32(1))
	f.Add("e,2", `u "q"`, "line\nbreak", uint8(event.AddToCart), float32(0), int64(0), int32(3))
	f.Add("", "ü-ñ 中", "i 2", uint8(event.Custom), float32(1e20), int64(-1), int32(0))
	f.Add("e", " u", "i", uint8(event.Custom), float32(1e-45), int64(math.MaxInt64), int32(-1))
	f.Fuzz(func(t *testing.T, id, user, item string, typ uint8, weight float32, nanos int64, qty int32) {
		e := event.Event{ID: id, UserID: user, ItemID: item, Type: event.Type(typ), Weight: weight, Time: time.Unix(0, nanos), Quantity: qty}
		var buf bytes.Buffer
		w := dataset.NewCSVWriter(&buf)
		if err := w.Write(e); err != nil {
			return // refusing is fine; TestCSVWriterRejects covers why
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		got, _, err := read(t, buf.String(), dataset.CSV, dataset.Options{})
		if err != nil {
			t.Fatalf("writer accepted %+v but its output does not read: %v\n%q", e, err, buf.String())
		}
		want := e
		if want.ID == "" {
			want.ID = got[0].ID // derived by the reader
		}
		sameEvents(t, got, []event.Event{want})
	})
}

func FuzzReadMovieLens(f *testing.F) {
	addSeeds(f,
		"196\t242\t3\t881250949\n186\t302\t4.5\t891717742\n22\t377\t1\t878887116\n",
		"196::242::3::881250949\r\n186::302::4.5::891717742\r\n",
		"userId,movieId,rating,timestamp\n196,242,3.0,881250949\n\n22,377,1.0,878887116\n",
		"1\t2\tfive\t3\n1\t2\t0\t3\n1\t2\t3\t2020-01-01\n1::2::3\n\t2\t3\t4\nhello\n",
		"1\t2\tNaN\t3\n1\t2\t+Inf\t3\n1\t2\t1e39\t9223372036854775807\n",
	)
	f.Fuzz(func(t *testing.T, data []byte) { checkRead(t, data, dataset.MovieLens) })
}

func FuzzReadSequence(f *testing.F) {
	addSeeds(f, "1 10 11 10\n\n2\t11\r\n3\n", "a b\x00c\n", "  \n\t\n")
	f.Fuzz(func(t *testing.T, data []byte) { checkRead(t, data, dataset.Sequence) })
}

func FuzzReadBasket(f *testing.F) {
	addSeeds(f,
		`{"7": [[1, 2], [], ["a", 3]], "1": [[2]]}`,
		`{"1": [[1, {"x": [1]}, true, 1.5, 2], 5, [3]], "2": {"a": [1]}, "": [[9]], "3": [[4]]}`,
		`[1]`, `{"1": [[1,}`, `{"1": [[1`, `{} {}`, `{"u": [[1e400, -0, "", null]]}`,
	)
	f.Fuzz(func(t *testing.T, data []byte) { checkRead(t, data, dataset.Basket) })
}

func FuzzReadDiginetica(f *testing.F) {
	const header = "session_id;user_id;item_id;timeframe;eventdate\n"
	addSeeds(f,
		header+"1;NA;81766;526309;2016-05-09\n48;2;24764;8863;2016-04-09\n",
		header+"1;NA;5;10;09.05.2016\n1;NA;5;-3;2016-05-09\n;NA;5;1;2016-05-09\n",
		header+"1;;5;9223372036854775807;9999-12-31\n",
		header+"1;;5;31535999999;9999-12-31\n2;;5;0;0000-01-01\n",
	)
	f.Fuzz(func(t *testing.T, data []byte) { checkRead(t, data, dataset.Diginetica) })
}

// FuzzReadDetect reads with the format detected from the content, as
// `recsysctl events import` does.
func FuzzReadDetect(f *testing.F) {
	addSeeds(f,
		"user_id,item_id,event_type,timestamp\nu,i,view,1\n",
		"196\t242\t3\t881250949\n", `{"7": [[1]]}`, "1 10 11\n",
		"session_id;user_id;item_id;timeframe;eventdate\n1;NA;81766;526309;2016-05-09\n",
	)
	f.Fuzz(func(t *testing.T, data []byte) { checkRead(t, data, "") })
}
