package synth_test

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/recsys-dev/recsys/internal/dataset"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/synth"
)

// benchConfig is a shop of the given size: 50 events per user, 100 per item.
func benchConfig(events int) synth.Config {
	return synth.Config{Users: max(events/50, 1), Items: max(events/100, 100), Events: events, Seed: 1}
}

// BenchmarkGenerate measures generation alone (the callback only counts);
// the 10M size shows that memory does not grow with the events (B/op stays
// the size of the per-event strings, the heap does not hold events).
func BenchmarkGenerate(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000, 10_000_000} {
		b.Run(fmt.Sprintf("events=%s", short(n)), func(b *testing.B) {
			shop := newShop(b, benchConfig(n))
			b.ReportAllocs()
			total := 0
			for b.Loop() {
				if err := shop.Generate(context.Background(), func(event.Event) error {
					total++
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkWriteCSV1M generates 1M events and writes them with the dataset
// package's CSV writer, reporting the file size.
func BenchmarkWriteCSV1M(b *testing.B) {
	shop := newShop(b, benchConfig(1_000_000))
	b.ReportAllocs()
	var size, total int64
	for b.Loop() {
		cw := &countingWriter{}
		w := dataset.NewCSVWriter(cw)
		if err := shop.Generate(context.Background(), func(e event.Event) error {
			total++
			return w.Write(e)
		}); err != nil {
			b.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		size = cw.n
	}
	b.ReportMetric(float64(size), "bytes/file")
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return io.Discard.Write(p)
}

func short(n int) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000:
		return fmt.Sprintf("%dK", n/1_000)
	}
	return fmt.Sprint(n)
}
