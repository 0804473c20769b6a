package server_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf/mftest"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// BenchmarkBatchRecommend is the whole RPC for 1,024 users at 100K items ×
// 64 factors, 10 items each, through the gRPC client over bufconn with the
// real interceptor chain and profiles in the test Redis (20 views over 20
// distinct items per user): block loads, fold-in, block scoring, selection,
// explanations, one streamed message per user. It reports users per
// second.
func BenchmarkBatchRecommend(b *testing.B) {
	const n, f, users = 100_000, 64, 1024
	e := newEnvWith(b, envOptions{})
	m := mftest.Random(b, n, f, 3)
	rng := rand.New(rand.NewPCG(3, 3))
	e.engine.SetModel(m)
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
	req := &recsysv1.BatchRecommendRequest{UserIds: userIDs, Count: 10}
	b.ReportAllocs()
	for b.Loop() {
		stream, err := e.rec.BatchRecommend(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		got := 0
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if len(msg.GetItems()) == 10 {
				got++
			}
		}
		if got != users {
			b.Fatalf("%d users with 10 items, want %d", got, users)
		}
	}
	b.ReportMetric(float64(users*b.N)/b.Elapsed().Seconds(), "users/s")
}
