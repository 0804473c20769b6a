package sparse_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/sparse"
	"github.com/recsys-dev/recsys/internal/sparse/sparsetest"
)

// BenchmarkBuild streams events with string ids into a Builder and builds
// the matrix and its transpose, as the trainer does. Events are made on the
// fly from a generated data set, so the heap figure is the Builder's and the
// matrices' own: it is the peak HeapInuse sampled after Build and after
// Transpose. Sizes: 1M events (50K users × 20K items) and 10M events
// (500K users × 200K items; skipped with -short).
func BenchmarkBuild(b *testing.B) {
	for _, size := range []struct {
		name         string
		users, items int
	}{{"1M", 50_000, 20_000}, {"10M", 500_000, 200_000}} {
		b.Run("events="+size.name, func(b *testing.B) {
			if size.name == "10M" && testing.Short() {
				b.Skip("10M events with -short")
			}
			g := sparsetest.Generate(sparsetest.Config{Users: size.users, Items: size.items, Clusters: 16, PerUser: 20, Zipf: 0.9, Noise: 0.2, Seed: 1})
			users, items := sparsetest.IDs("user-", g.Users), sparsetest.IDs("item-", g.Items)
			types := []event.Type{event.View, event.AddToCart, event.Purchase}
			asOf := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			n := g.Triples.Len()
			b.ReportAllocs()
			var base runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&base)
			var peak uint64
			sample := func() {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse-base.HeapInuse)
			}
			for b.Loop() {
				bl := sparse.NewBuilder(event.DefaultWeighting(), asOf)
				bl.Grow(n)
				for k := range n {
					e := event.Event{
						UserID: users[g.Triples.Row[k]], ItemID: items[g.Triples.Col[k]],
						Type: types[k%3], Time: time.Unix(g.Time[k], 0),
					}
					if err := bl.Add(e); err != nil {
						b.Fatal(err)
					}
				}
				m, err := bl.Build()
				if err != nil {
					b.Fatal(err)
				}
				sample()
				mt := m.Transpose()
				sample()
				runtime.KeepAlive(mt)
				runtime.KeepAlive(bl)
			}
			b.ReportMetric(float64(peak)/float64(n), "heap-B/event")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/event")
			b.ReportMetric(float64(n), "events")
		})
	}
}
