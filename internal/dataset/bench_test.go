package dataset_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/recsys-dev/recsys/internal/dataset"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/synth"
)

// benchEvents is 100K generated events.
func benchEvents(b *testing.B) []event.Event {
	b.Helper()
	var es []event.Event
	err := synth.Generate(context.Background(), synth.Config{Users: 2000, Items: 1000, Events: 100_000, Seed: 1}, func(e event.Event) error {
		es = append(es, e)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return es
}

func BenchmarkCSVWrite(b *testing.B) {
	es := benchEvents(b)
	b.ReportAllocs()
	for b.Loop() {
		w := dataset.NewCSVWriter(io.Discard)
		for _, e := range es {
			if err := w.Write(e); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(es))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkCSVRead reads 100K events from memory, with the event_id column
// and without it (ids derived by hashing).
func BenchmarkCSVRead(b *testing.B) {
	es := benchEvents(b)
	for _, tt := range []struct {
		name  string
		clear bool
	}{{"with-ids", false}, {"derived-ids", true}} {
		b.Run(tt.name, func(b *testing.B) {
			var buf bytes.Buffer
			w := dataset.NewCSVWriter(&buf)
			for _, e := range es {
				if tt.clear {
					e.ID = ""
				}
				if err := w.Write(e); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				b.Fatal(err)
			}
			data := buf.Bytes()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				st, err := dataset.Read(context.Background(), bytes.NewReader(data), dataset.CSV, dataset.Options{}, func(event.Event) error { return nil })
				if err != nil || st.Events != int64(len(es)) {
					b.Fatalf("got %+v, %v", st, err)
				}
			}
			b.ReportMetric(float64(len(es))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
