package server_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/cputime"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf/mftest"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// BenchmarkRecommendAttribution is one Recommend of 20 items at 10K and 100K
// items × 64 factors through the gRPC client over bufconn with the real
// interceptor chain, profiles in the test Redis (20 views over 20 distinct
// items for each of 1,024 users, asked in turn), with the answer records
// off and on. With them on, every answer is queued for the attribution
// writer, which writes the records and the daily counters to the same
// Redis in the background on the same cores, as in recsysd; that cost is
// what the two variants compare. It reports the answers the queue dropped
// per op (must be 0: a drop means the writer did not keep up) and the
// process's CPU time per op (client, server and writer; Redis's own work
// is not in it), which depends less than ns/op on what else runs.
func BenchmarkRecommendAttribution(b *testing.B) {
	const f, users = 64, 1024
	for _, n := range []int{10_000, 100_000} {
		for _, on := range []bool{false, true} {
			name := "items=" + strconv.Itoa(n/1000) + "K/attribution=off"
			if on {
				name = "items=" + strconv.Itoa(n/1000) + "K/attribution=on"
			}
			b.Run(name, func(b *testing.B) {
				e := newEnvWith(b, envOptions{attribution: on})
				m := mftest.Random(b, n, f, 3)
				e.engine.SetModel(m)
				rng := rand.New(rand.NewPCG(3, 3))
				now := e.clock.Now()
				userIDs := make([]string, users)
				var evs []event.Event
				for u := range userIDs {
					userIDs[u] = "user-" + strconv.Itoa(u)
					for j := range 20 {
						evs = append(evs, event.Event{ID: strconv.Itoa(u) + "-" + strconv.Itoa(j), UserID: userIDs[u],
							ItemID: m.ItemID(int32(rng.IntN(n))), Type: event.View, Time: now.Add(-time.Duration(j) * time.Hour)})
					}
					if len(evs) >= 1000 || u == users-1 {
						if _, err := e.store.Record(context.Background(), evs); err != nil {
							b.Fatal(err)
						}
						evs = evs[:0]
					}
				}
				ctx := context.Background()
				req := &recsysv1.RecommendRequest{Count: 20, Context: &recsysv1.RequestContext{Placement: "home"}}
				i := 0
				b.ReportAllocs()
				cpu0 := cputime.Process()
				for b.Loop() {
					req.UserId = userIDs[i%users]
					i++
					res, err := e.rec.Recommend(ctx, req)
					if err != nil {
						b.Fatal(err)
					}
					if len(res.GetItems()) != 20 || res.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED {
						b.Fatalf("%d items from %v, want 20 personalized", len(res.GetItems()), res.GetSource())
					}
				}
				if on {
					// The records of the last answers are part of the cost.
					if err := e.attr.Flush(ctx); err != nil {
						b.Fatal(err)
					}
					b.ReportMetric(float64(e.attr.Dropped())/float64(b.N), "dropped/op")
				}
				if cpu := cputime.Process() - cpu0; cpu > 0 {
					b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
				}
			})
		}
	}
}
