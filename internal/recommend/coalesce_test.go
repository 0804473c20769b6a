package recommend

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/coalesce"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/profile"
)

// userProfiles serves a fixed profile per user.
type userProfiles map[string]profile.Profile

func (u userProfiles) Load(_ context.Context, id string) (profile.Profile, error) { return u[id], nil }

// coalesceEngines returns an engine scoring alone and one coalescing (one
// slot, so that concurrent requests queue), on the same model, with users
// user-0..users-1 of different histories.
func coalesceEngines(t testing.TB, n, f, users int, cfg coalesce.Config) (alone, coalesced *Engine, c *coalesce.Coalescer, m *mf.Model) {
	t.Helper()
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	m = benchModel(t, n, f)
	rng := rand.New(rand.NewPCG(5, 5))
	ps := userProfiles{}
	for u := range users {
		var p profile.Profile
		for i := range 20 {
			p.History = append(p.History, profile.Entry{ItemID: m.ItemID(int32(rng.IntN(n))), Type: event.View,
				Time: now.Add(-time.Duration(i) * time.Hour)})
		}
		ps["user-"+strconv.Itoa(u)] = p
	}
	c, err := coalesce.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	engine := func(c *coalesce.Coalescer) *Engine {
		// ExactScan: the coalescer batches the full float32 scan, which
		// the index search (candidates.go) would otherwise replace.
		e, err := New(Config{Now: func() time.Time { return now }, Coalescer: c, ExactScan: true}, ps, nil, NewPopular(noPopular{}, 10, quietLog()))
		if err != nil {
			t.Fatal(err)
		}
		e.SetModel(m)
		return e
	}
	return engine(nil), engine(c), c, m
}

// sameAnswer fails unless got has want's items in want's order with its
// scores (up to float32 summation order: blocks run another kernel).
func sameAnswer(got, want Result) error {
	if len(got.Items) != len(want.Items) || got.Source != want.Source {
		return fmt.Errorf("got %d items from %v, want %d from %v", len(got.Items), got.Source, len(want.Items), want.Source)
	}
	for i := range want.Items {
		g, w := got.Items[i], want.Items[i]
		if g.ItemID != w.ItemID || math.Abs(float64(g.Score-w.Score)) > 1e-4*(1+math.Abs(float64(w.Score))) {
			return fmt.Errorf("item %d: got %s %v, want %s %v", i, g.ItemID, g.Score, w.ItemID, w.Score)
		}
	}
	return nil
}

// Concurrent Recommend and Similar callers on a coalescing engine get the
// answers the engine without coalescing gives them, each its own, also
// when some of them are cancelled.
func TestCoalescedAnswersAreEachCallersOwn(t *testing.T) {
	const users, rounds = 48, 4
	alone, coalesced, c, m := coalesceEngines(t, 2000, 16, users, coalesce.Config{MaxBlock: 8, Slots: 1})
	ctx := context.Background()
	want := make([]Result, users)
	wantSimilar := make([]Result, users)
	for u := range users {
		var err error
		if want[u], err = alone.Recommend(ctx, Request{UserID: "user-" + strconv.Itoa(u), Count: 20}); err != nil {
			t.Fatal(err)
		}
		if want[u].Source != SourcePersonalized {
			t.Fatalf("user %d: answer from %v", u, want[u].Source)
		}
		if wantSimilar[u], err = alone.Similar(ctx, SimilarRequest{ItemID: m.ItemID(int32(u * 11)), Count: 20}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var cancelled atomic.Int64
	for u := range users {
		wg.Go(func() {
			for r := range rounds {
				cctx, cancel := context.WithCancel(ctx)
				if (u+r)%5 == 0 {
					cancel() // a cancelled caller: its own error, nobody else's
				}
				got, err := coalesced.Recommend(cctx, Request{UserID: "user-" + strconv.Itoa(u), Count: 20})
				gotS, errS := coalesced.Similar(cctx, SimilarRequest{ItemID: m.ItemID(int32(u * 11)), Count: 20})
				cancel()
				if (u+r)%5 == 0 {
					if !errors.Is(err, context.Canceled) || !errors.Is(errS, context.Canceled) {
						t.Errorf("cancelled user %d: got %v, %v", u, err, errS)
					}
					cancelled.Add(1)
					continue
				}
				if err != nil || errS != nil {
					t.Errorf("user %d: %v, %v", u, err, errS)
					continue
				}
				if err := sameAnswer(got, want[u]); err != nil {
					t.Errorf("Recommend user %d: %v", u, err)
				}
				if err := sameAnswer(gotS, wantSimilar[u]); err != nil {
					t.Errorf("Similar item %d: %v", u*11, err)
				}
			}
		})
	}
	wg.Wait()
	// How many requests met in blocks depends on the scheduler (a fast
	// machine may score every one alone); the block path itself is tested
	// deterministically in internal/coalesce.
	t.Logf("%+v (%d callers cancelled)", c.Stats(), cancelled.Load())
}

// BenchmarkRecommendConcurrent is Recommend (BenchmarkRecommend's user
// histories, one per caller) from 32 concurrent callers, with and without
// coalescing; ns/op is per request.
func BenchmarkRecommendConcurrent(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		for _, maxBlock := range []int{0, coalesce.DefaultMaxBlock} {
			name := "off"
			if maxBlock > 0 {
				name = "coalesced"
			}
			b.Run(name+"/items="+strconv.Itoa(n)+"/factors=64", func(b *testing.B) {
				_, eng, c, _ := coalesceEngines(b, n, 64, 64, coalesce.Config{MaxBlock: maxBlock})
				var next atomic.Int64
				b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					req := Request{UserID: "user-" + strconv.Itoa(int(next.Add(1)%64)), Count: 20}
					for pb.Next() {
						if _, err := eng.Recommend(context.Background(), req); err != nil {
							b.Error(err)
							return
						}
					}
				})
				if st := c.Stats(); st.Blocks > 0 {
					b.ReportMetric(float64(st.InBlocks)/float64(st.Blocks), "reqs/block")
				}
			})
		}
	}
}
