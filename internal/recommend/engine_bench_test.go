package recommend

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/profile"
)

// staticProfiles serves one fixed profile: the benchmark measures the
// recommender's own work (fold-in, scoring, top-K), excluding Redis.
type staticProfiles struct{ p profile.Profile }

func (s staticProfiles) Load(context.Context, string) (profile.Profile, error) { return s.p, nil }

type noPopular struct{}

func (noPopular) Popular(context.Context, int) ([]profile.ItemScore, error) { return nil, nil }

func benchModel(b *testing.B, n, f int) *mf.Model {
	rng := rand.New(rand.NewPCG(1, 1))
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "item-" + strconv.Itoa(i)
	}
	factors := make([]float32, n*f)
	for i := range factors {
		factors[i] = float32(rng.NormFloat64() * 0.1)
	}
	m, err := mf.New(mf.Info{Version: "bench", Hyper: mf.Hyperparameters{Factors: f, Regularization: 0.1, Alpha: 10}}, ids, factors)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkRecommend is one Recommend of 20 items for a user with a full
// history (200 events over 100 distinct items, 5 purchases): fold-in, scoring
// of every item, exclusions and top-20.
func BenchmarkRecommend(b *testing.B) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	for _, n := range []int{10_000, 100_000} {
		b.Run("items="+strconv.Itoa(n)+"/factors=64", func(b *testing.B) {
			m := benchModel(b, n, 64)
			rng := rand.New(rand.NewPCG(2, 2))
			var p profile.Profile
			for i := 0; i < 200; i++ {
				p.History = append(p.History, profile.Entry{
					ItemID: m.ItemID(int32(rng.IntN(100) * (n / 100))),
					Type:   event.View, Time: now.Add(-time.Duration(i) * time.Hour),
				})
			}
			for i := 0; i < 5; i++ {
				p.Purchased = append(p.Purchased, profile.Purchase{ItemID: m.ItemID(int32(i)), Time: now})
			}
			eng, err := New(Config{Now: func() time.Time { return now }}, staticProfiles{p}, nil,
				NewPopular(noPopular{}, 10, slog.New(slog.NewTextHandler(io.Discard, nil))))
			if err != nil {
				b.Fatal(err)
			}
			eng.SetModel(m)
			ctx := context.Background()
			req := Request{UserID: "u", Count: 20}
			b.ReportAllocs()
			for b.Loop() {
				res, err := eng.Recommend(ctx, req)
				if err != nil || len(res.Items) != 20 {
					b.Fatal(err, len(res.Items))
				}
			}
		})
	}
}

// BenchmarkSimilar is one SimilarItems of 20 items.
func BenchmarkSimilar(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run("items="+strconv.Itoa(n)+"/factors=64", func(b *testing.B) {
			m := benchModel(b, n, 64)
			eng, err := New(Config{}, staticProfiles{}, nil, NewPopular(noPopular{}, 10, slog.New(slog.NewTextHandler(io.Discard, nil))))
			if err != nil {
				b.Fatal(err)
			}
			eng.SetModel(m)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := eng.Similar(ctx, SimilarRequest{ItemID: "item-7", Count: 20}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
