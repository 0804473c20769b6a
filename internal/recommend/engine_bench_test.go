package recommend

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/cooccur"
	"github.com/recsys-dev/recsys/internal/cputime"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/mf/mftest"
	"github.com/recsys-dev/recsys/internal/profile"
)

// staticProfiles serves one fixed profile: the benchmark measures the
// recommender's own work (fold-in, scoring, top-K), excluding Redis.
type staticProfiles struct{ p profile.Profile }

func (s staticProfiles) Load(context.Context, string) (profile.Profile, error) { return s.p, nil }

type noPopular struct{}

func (noPopular) Popular(context.Context, int) ([]profile.ItemScore, error) { return nil, nil }

func benchModel(b testing.TB, n, f int) *mf.Model { return mftest.Random(b, n, f, 1) }

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

// staticRules serves fixed shop rules.
type staticRules struct{ r *catalog.Rules }

func (s staticRules) Rules() *catalog.Rules { return s.r }

// zeroPopularity says every item is unpopular (all new items explore).
type zeroPopularity struct{}

func (zeroPopularity) PopularityOf(_ context.Context, ids []string) ([]float64, error) {
	return make([]float64, len(ids)), nil
}

// BenchmarkRecommendShop is BenchmarkRecommend's request with every shop
// feature on: a catalog with 50 categories, prices, 5% unavailable, 2%
// member-only and 3% sale-windowed items; a blocklist of 1000 items and 2
// categories; a repeatable category; 30 rotated items (3 impressions each);
// a request filter (3 excluded categories, a price range); a cap of 3 per
// category; 10% exploration slots from 500 new items; explanations for
// every item. "plain" is the same engine and user without the request's
// filter, cap, rotation and exploration, but with the catalog and rules.
func BenchmarkRecommendShop(b *testing.B) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	for _, n := range []int{10_000, 100_000} {
		m := benchModel(b, n, 64)
		rng := rand.New(rand.NewPCG(4, 4))
		cat := &staticCatalog{items: make(map[string]catalog.Item, n+500), version: 1}
		for i := range n {
			it := catalog.Item{
				ID: m.ItemID(int32(i)), Category: "cat-" + strconv.Itoa(rng.IntN(50)),
				Price: 1 + float64(rng.IntN(100)), Available: rng.Float64() > 0.05, MemberOnly: rng.Float64() < 0.02,
				CreatedAt: now.Add(-400 * 24 * time.Hour),
			}
			if rng.Float64() < 0.03 {
				it.ValidFrom, it.ValidUntil = now.Add(-time.Hour), now.Add(time.Duration(rng.IntN(3)-1)*time.Hour)
			}
			cat.items[it.ID] = it
		}
		for i := range 500 {
			id := "new-" + strconv.Itoa(i)
			cat.items[id] = catalog.Item{ID: id, Category: "cat-" + strconv.Itoa(rng.IntN(50)), Price: 20, Available: true,
				CreatedAt: now.Add(-time.Duration(i) * time.Hour)}
		}
		rules := &catalog.Rules{Version: 1, BlockedItems: map[string]struct{}{}, BlockedCategories: map[string]struct{}{"cat-7": {}, "cat-8": {}},
			Categories: map[string]catalog.Category{"cat-1": {Name: "cat-1", RepeatableAfter: time.Hour}}}
		for range 1000 {
			rules.BlockedItems[m.ItemID(int32(rng.IntN(n)))] = struct{}{}
		}
		var p profile.Profile
		for i := 0; i < 200; i++ {
			p.History = append(p.History, profile.Entry{
				ItemID: m.ItemID(int32(rng.IntN(100) * (n / 100))),
				Type:   event.View, Time: now.Add(-time.Duration(i) * time.Hour),
			})
		}
		for i := 0; i < 5; i++ {
			p.Purchased = append(p.Purchased, profile.Purchase{ItemID: m.ItemID(int32(i)), Time: now.Add(-48 * time.Hour)})
		}
		for i := range 30 {
			t := []time.Time{now.Add(-3 * time.Hour), now.Add(-2 * time.Hour), now.Add(-time.Hour)}
			p.Impressions = append(p.Impressions, profile.Impressions{ItemID: m.ItemID(int32(i * 7)), Times: t})
		}
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		arrivals, err := NewArrivals(ArrivalsConfig{Now: func() time.Time { return now }}, cat, zeroPopularity{}, log)
		if err != nil {
			b.Fatal(err)
		}
		if err := arrivals.Refresh(context.Background()); err != nil {
			b.Fatal(err)
		}
		eng, err := New(Config{
			Now: func() time.Time { return now }, RotateAfter: 3, ExploreShare: 0.1, Arrivals: arrivals, Rules: staticRules{rules},
		}, staticProfiles{p}, cat, NewPopular(noPopular{}, 10, log))
		if err != nil {
			b.Fatal(err)
		}
		eng.SetModel(m)
		ctx := context.Background()
		all := Request{UserID: "u", Count: 20, MaxPerCategory: 3, Filter: Filter{
			ExcludeCategories: []string{"cat-1", "cat-2", "cat-3"}, Price: &PriceRange{Min: 5, Max: 80},
		}}
		plain := Request{UserID: "u", Count: 20, MaxPerCategory: -1}
		for _, tc := range []struct {
			name string
			req  Request
			cfg  func(*Config)
		}{
			{"plain", plain, func(c *Config) { c.RotateAfter, c.ExploreShare = 0, 0 }},
			{"all-filters", all, func(*Config) {}},
		} {
			b.Run("items="+strconv.Itoa(n)+"/factors=64/"+tc.name, func(b *testing.B) {
				saved := eng.cfg
				tc.cfg(&eng.cfg)
				defer func() { eng.cfg = saved }()
				if _, err := eng.Recommend(ctx, tc.req); err != nil { // builds the row state
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					res, err := eng.Recommend(ctx, tc.req)
					if err != nil || len(res.Items) != 20 {
						b.Fatal(err, len(res.Items))
					}
				}
			})
		}
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

// BenchmarkRowState is the rebuild of the per-row filter state after a
// catalog or rules change (once per change, by one request): a catalog
// lookup and a blocklist check per model item.
func BenchmarkRowState(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run("items="+strconv.Itoa(n), func(b *testing.B) {
			m := benchModel(b, n, 8)
			cat := &staticCatalog{items: make(map[string]catalog.Item, n), version: 1}
			for i := range n {
				id := m.ItemID(int32(i))
				cat.items[id] = catalog.Item{ID: id, Category: "cat-" + strconv.Itoa(i%50), Price: 10, Available: i%20 != 0}
			}
			rules := &catalog.Rules{Version: 1, BlockedItems: map[string]struct{}{"item-3": {}}, BlockedCategories: map[string]struct{}{"cat-7": {}}}
			eng, err := New(Config{Rules: staticRules{rules}}, staticProfiles{}, cat, NewPopular(noPopular{}, 1, slog.New(slog.DiscardHandler)))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				eng.buildRows(m, 1, rules)
			}
		})
	}
}

// staticLists serves fixed co-purchase lists: the benchmark measures the
// engine's work (merge, filter, fallback scoring), excluding Redis (see
// cooccur's BenchmarkStoreRead for the round trip).
type staticLists map[string][]cooccur.Entry

func (s staticLists) Read(_ context.Context, ids []string) ([][]cooccur.Entry, error) {
	out := make([][]cooccur.Entry, len(ids))
	for i, id := range ids {
		out[i] = s[id]
	}
	return out, nil
}

// BenchmarkBoughtTogether is one BoughtTogether of 20 items for a cart of 1
// and of 5 items, at 100,000 items × 64 factors: from the lists (50 entries
// per cart item, merged), and from the fallback alone (no lists: the summed
// cosine similarity of every item to the cart, top-20 outside the cart's
// categories).
func BenchmarkBoughtTogether(b *testing.B) {
	const n = 100_000
	m := benchModel(b, n, 64)
	rng := rand.New(rand.NewPCG(3, 3))
	lists := staticLists{}
	for i := range 5 {
		var l []cooccur.Entry
		for k := range 50 {
			l = append(l, cooccur.Entry{ItemID: m.ItemID(int32(rng.IntN(n))), Score: 1 / float32(k+1), Count: 2})
		}
		lists[m.ItemID(int32(i))] = l
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, path := range []string{"lists", "fallback"} {
		cfg := Config{}
		if path == "lists" {
			cfg.Bought = lists
		}
		eng, err := New(cfg, staticProfiles{}, nil, NewPopular(noPopular{}, 10, log))
		if err != nil {
			b.Fatal(err)
		}
		eng.SetModel(m)
		for _, cart := range []int{1, 5} {
			b.Run("path="+path+"/cart="+strconv.Itoa(cart), func(b *testing.B) {
				req := BoughtRequest{Count: 20}
				for i := range cart {
					req.ItemIDs = append(req.ItemIDs, m.ItemID(int32(i)))
				}
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					res, err := eng.BoughtTogether(ctx, req)
					if err != nil || len(res.Items) != 20 {
						b.Fatal(err, len(res.Items))
					}
				}
			})
		}
	}
}

// staticPushProfiles serves the same profile for every user id.
type staticPushProfiles struct{ p profile.Profile }

func (s staticPushProfiles) LoadMany(_ context.Context, ids []string) ([]profile.Profile, error) {
	out := make([]profile.Profile, len(ids))
	for i, id := range ids {
		out[i] = s.p
		out[i].UserID = id
	}
	return out, nil
}

func (s staticPushProfiles) EachSeenUser(context.Context, time.Time, time.Time, int, func([]string) error) error {
	return nil
}

// BenchmarkPush is BatchRecommend's work for 1,024 users at 100K items × 64
// factors, 10 items each: fold-in per user, block scoring, exclusions,
// top-10 and explanations, excluding Redis (every user has the same
// profile: 20 or 100 distinct items over 200 events, 5 purchases, 10
// pushed items). It reports users per second of wall time, and per second
// of the process's CPU time (on a shared machine the wall-clock rate
// depends on the other load; Push uses up to GOMAXPROCS cores).
// Models below IndexMinItems are searched through the flat index.
func BenchmarkPush(b *testing.B) {
	benchPush(b, 100_000, []int{20, 100}, 0, "")
	benchPush(b, 100_000, []int{20}, -1, "/index=ivf")
}

// BenchmarkPushIVF1M is BenchmarkPush at 1M items with the partitioned
// index (IndexMinItems < 0; building it is not timed).
func BenchmarkPushIVF1M(b *testing.B) {
	benchPush(b, 1_000_000, []int{20}, -1, "/index=ivf")
}

func benchPush(b *testing.B, n int, profiles []int, minItems int, suffix string) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	const users = 1024
	m := benchModel(b, n, 64)
	for _, distinct := range profiles {
		b.Run("items="+strconv.Itoa(n)+"/factors=64/profile="+strconv.Itoa(distinct)+suffix, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(2, 2))
			p := profile.Profile{FirstSeen: now.Add(-24 * time.Hour)}
			for i := 0; i < 200; i++ {
				p.History = append(p.History, profile.Entry{
					ItemID: m.ItemID(int32(rng.IntN(distinct) * (n / distinct))),
					Type:   event.View, Time: now.Add(-time.Duration(i) * time.Hour),
				})
			}
			for i := 0; i < 5; i++ {
				p.Purchased = append(p.Purchased, profile.Purchase{ItemID: m.ItemID(int32(i)), Time: now})
			}
			for i := 0; i < 10; i++ {
				p.Pushed = append(p.Pushed, profile.Pushed{ItemID: m.ItemID(int32(10 + i)), Time: now})
			}
			eng, err := New(Config{Now: func() time.Time { return now }, PushProfiles: staticPushProfiles{p}, IndexMinItems: minItems}, staticProfiles{p}, nil,
				NewPopular(noPopular{}, 10, slog.New(slog.NewTextHandler(io.Discard, nil))))
			if err != nil {
				b.Fatal(err)
			}
			eng.SetModel(m)
			ids := make([]string, users)
			for i := range ids {
				ids[i] = "user-" + strconv.Itoa(i)
			}
			ctx := context.Background()
			req := PushRequest{UserIDs: ids, Count: 10}
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				got := 0
				if err := eng.Push(ctx, req, func(r PushResult) error {
					if len(r.Items) == 10 {
						got++
					}
					return nil
				}); err != nil || got != users {
					b.Fatal(err, got)
				}
			}
			b.ReportMetric(float64(users*b.N)/b.Elapsed().Seconds(), "users/s")
			if cpu := cputime.Process() - cpu0; cpu > 0 {
				b.ReportMetric(float64(users*b.N)/cpu.Seconds(), "users/cpu-s")
			}
		})
	}
}

// variedPushProfiles serves each user's own profile (users not listed get
// an empty one), to Push and to Recommend.
type variedPushProfiles map[string]profile.Profile

func (v variedPushProfiles) LoadMany(_ context.Context, ids []string) ([]profile.Profile, error) {
	out := make([]profile.Profile, len(ids))
	for i, id := range ids {
		out[i] = v[id]
		out[i].UserID = id
	}
	return out, nil
}

// Load serves Recommend the same profiles.
func (v variedPushProfiles) Load(_ context.Context, id string) (profile.Profile, error) {
	p := v[id]
	p.UserID = id
	return p, nil
}

func (variedPushProfiles) EachSeenUser(context.Context, time.Time, time.Time, int, func([]string) error) error {
	return nil
}

// shopModel is the serving benchmark's generated shop (benchmarks/serve):
// item i lies around the centre of category i % categories (centres drawn
// from N(0, 0.3²), noise N(0, 0.1²)), so similar items exist.
func shopModel(tb testing.TB, n, f, categories int) *mf.Model {
	tb.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	centres := make([]float32, categories*f)
	for i := range centres {
		centres[i] = float32(rng.NormFloat64() * 0.3)
	}
	ids := make([]string, n)
	factors := make([]float32, n*f)
	for i := range n {
		ids[i] = "item-" + strconv.Itoa(i)
		c := i % categories
		for j := range f {
			factors[i*f+j] = centres[c*f+j] + float32(rng.NormFloat64()*0.1)
		}
	}
	m, err := mf.New(mf.Info{Version: "bench", Hyper: mf.Hyperparameters{Factors: f, Regularization: 0.1, Alpha: 10}}, ids, factors)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// BenchmarkPush1M is BatchRecommend's engine work at 1M items × 64 factors
// with the partitioned index (IndexMinItems < 0; building it is not timed)
// for 1,024 users with a profile each (200 views over 20 distinct items, 5
// purchases, 10 pushed items), 10 items per user. model=random draws every
// factor from N(0, 0.1²): no structure, so the index's bounds prune little
// (the worst case: a search scans a quarter to a half of the items);
// model=shop is the serving benchmark's generated shop (200 category
// centres plus noise), each user's items from two categories. It reports
// users per second of wall time and per second of the process's CPU time.
func BenchmarkPush1M(b *testing.B) {
	const n, users, categories = 1_000_000, 1024, 200
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	for _, kind := range []string{"random", "shop"} {
		b.Run("items=1000000/factors=64/model="+kind, func(b *testing.B) {
			var m *mf.Model
			if kind == "random" {
				m = benchModel(b, n, 64)
			} else {
				m = shopModel(b, n, 64, categories)
			}
			rng := rand.New(rand.NewPCG(3, 3))
			pp := variedPushProfiles{}
			ids := make([]string, users)
			for u := range users {
				ids[u] = "user-" + strconv.Itoa(u)
				var items [20]int
				for i := range items {
					if kind == "random" {
						items[i] = rng.IntN(n)
					} else {
						c := []int{u % categories, (7*u + 3) % categories}[i%2]
						items[i] = c + categories*rng.IntN(n/categories)
					}
				}
				p := profile.Profile{FirstSeen: now.Add(-24 * time.Hour)}
				for i := range 200 {
					p.History = append(p.History, profile.Entry{
						ItemID: m.ItemID(int32(items[rng.IntN(len(items))])),
						Type:   event.View, Time: now.Add(-time.Duration(i) * time.Hour),
					})
				}
				for i := range 5 {
					p.Purchased = append(p.Purchased, profile.Purchase{ItemID: m.ItemID(int32(items[i])), Time: now})
				}
				for range 10 {
					p.Pushed = append(p.Pushed, profile.Pushed{ItemID: m.ItemID(int32(rng.IntN(n))), Time: now})
				}
				pp[ids[u]] = p
			}
			eng, err := New(Config{Now: func() time.Time { return now }, PushProfiles: pp, IndexMinItems: -1}, staticProfiles{}, nil,
				NewPopular(noPopular{}, 10, slog.New(slog.NewTextHandler(io.Discard, nil))))
			if err != nil {
				b.Fatal(err)
			}
			eng.SetModel(m)
			ctx := context.Background()
			req := PushRequest{UserIDs: ids, Count: 10}
			b.ReportAllocs()
			cpu0 := cputime.Process()
			for b.Loop() {
				got := 0
				if err := eng.Push(ctx, req, func(r PushResult) error {
					if len(r.Items) == 10 {
						got++
					}
					return nil
				}); err != nil || got != users {
					b.Fatal(err, got)
				}
			}
			b.ReportMetric(float64(users*b.N)/b.Elapsed().Seconds(), "users/s")
			if cpu := cputime.Process() - cpu0; cpu > 0 {
				b.ReportMetric(float64(users*b.N)/cpu.Seconds(), "users/cpu-s")
			}
		})
	}
}
