package cooccur

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/redistest"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func buy(user, item string, at time.Duration) event.Event {
	return event.Event{UserID: user, ItemID: item, Type: event.Purchase, Time: t0.Add(at)}
}

func listsOf(t *testing.T, cfg Config, evs []event.Event) map[string][]Entry {
	t.Helper()
	c, err := NewCounter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		c.Add(e)
	}
	out := map[string][]Entry{}
	for _, l := range c.Lists() {
		out[l.ItemID] = l.Entries
	}
	return out
}

func TestCounterCountsOncePerUserWithinTheWindow(t *testing.T) {
	evs := []event.Event{
		// u1 buys a and b together twice, and c two days later.
		buy("u1", "a", 0), buy("u1", "b", time.Hour), buy("u1", "a", 2*time.Hour), buy("u1", "b", 3*time.Hour),
		buy("u1", "c", 50*time.Hour),
		// u2 buys a and b in the same minute; views and carts do not count.
		buy("u2", "b", time.Minute), buy("u2", "a", 0),
		{UserID: "u2", ItemID: "c", Type: event.View, Time: t0},
		{UserID: "u2", ItemID: "c", Type: event.AddToCart, Time: t0},
		// u3 buys a and c a day and a half apart: outside the window.
		buy("u3", "a", 0), buy("u3", "c", 36*time.Hour),
	}
	got := listsOf(t, Config{MinSupport: 1}, evs)
	// buyers: a 3 (u1,u2,u3), b 2, c 2 (u1,u3); pair (a,b) 2 users.
	want := float32(2 / math.Sqrt(3*2))
	if len(got["a"]) != 1 || got["a"][0].ItemID != "b" || got["a"][0].Count != 2 || got["a"][0].Score != want {
		t.Errorf("list of a = %+v, want only b with count 2 and score %v", got["a"], want)
	}
	if len(got["b"]) != 1 || got["b"][0].ItemID != "a" {
		t.Errorf("list of b = %+v, want only a", got["b"])
	}
	if l, ok := got["c"]; ok {
		t.Errorf("c has a list %+v; it was never bought within the window of another item", l)
	}
}

func TestCounterMinSupportAndCap(t *testing.T) {
	var evs []event.Event
	// x is bought with y by 3 users, with z by 1 user, with w0..w9 by 2 users each.
	for u := range 3 {
		evs = append(evs, buy(fmt.Sprint("y", u), "x", 0), buy(fmt.Sprint("y", u), "y", time.Minute))
	}
	evs = append(evs, buy("z0", "x", 0), buy("z0", "z", time.Minute))
	for w := range 10 {
		for u := range 2 {
			user := fmt.Sprintf("w%d-%d", w, u)
			evs = append(evs, buy(user, "x", 0), buy(user, fmt.Sprint("w", w), time.Minute))
		}
	}
	tests := []struct {
		name    string
		cfg     Config
		wantLen int
		wantZ   bool
	}{
		{"default support 2 drops z", Config{}, 11, false},
		{"support 1 keeps z", Config{MinSupport: 1}, 12, true},
		{"support 3 keeps only y", Config{MinSupport: 3}, 1, false},
		{"cap 4", Config{Cap: 4}, 4, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listsOf(t, tt.cfg, evs)["x"]
			if len(got) != tt.wantLen {
				t.Fatalf("list of x has %d entries, want %d: %+v", len(got), tt.wantLen, got)
			}
			if got[0].ItemID != "y" {
				t.Errorf("best partner of x = %s, want y (most support at equal buyers)", got[0].ItemID)
			}
			hasZ := false
			for i, e := range got {
				hasZ = hasZ || e.ItemID == "z"
				if i > 0 && e.Score > got[i-1].Score {
					t.Errorf("entry %d (%v) scores above entry %d (%v)", i, e.Score, i-1, got[i-1].Score)
				}
			}
			if hasZ != tt.wantZ {
				t.Errorf("z listed = %v, want %v", hasZ, tt.wantZ)
			}
		})
	}
}

func TestCounterMaxPartners(t *testing.T) {
	// Two users each buy a, then 5 fillers, then b, all within the window:
	// with MaxPartners 3, a is never paired with b.
	var evs []event.Event
	for _, u := range []string{"u1", "u2"} {
		evs = append(evs, buy(u, "a", 0))
		for k := range 5 {
			evs = append(evs, buy(u, fmt.Sprint("f", k), time.Duration(k+1)*time.Minute))
		}
		evs = append(evs, buy(u, "b", time.Hour))
	}
	for _, tt := range []struct {
		partners int
		want     bool
	}{{3, false}, {6, true}} {
		got := listsOf(t, Config{MaxPartners: tt.partners}, evs)
		paired := false
		for _, e := range got["a"] {
			paired = paired || e.ItemID == "b"
		}
		if paired != tt.want {
			t.Errorf("MaxPartners %d: a paired with b = %v, want %v", tt.partners, paired, tt.want)
		}
	}
}

// plantedBaskets generates a shop where users buy a few random items, a best
// seller is bought by 60% of the users (independently of anything else), and
// each user belongs to one planted pair, which a quarter of its users buy
// together and a further share buy the first item of alone.
func plantedBaskets(seed uint64, users, items int, pairs [][2]string) []event.Event {
	rng := rand.New(rand.NewPCG(seed, 1))
	var evs []event.Event
	for u := range users {
		user := fmt.Sprint("u", u)
		day := time.Duration(rng.IntN(60)) * 24 * time.Hour
		// The best seller, with whatever else the user buys that day.
		if rng.IntN(5) < 3 {
			evs = append(evs, buy(user, "best", day))
		}
		for k := range 1 + rng.IntN(3) {
			evs = append(evs, buy(user, fmt.Sprint("i", rng.IntN(items)), day+time.Duration(k)*time.Minute))
		}
		p := pairs[u%len(pairs)]
		if rng.IntN(4) == 0 {
			evs = append(evs, buy(user, p[0], day+time.Hour), buy(user, p[1], day+2*time.Hour))
		} else if rng.IntN(2) == 0 {
			evs = append(evs, buy(user, p[0], day+time.Hour)) // alone, at times with the best seller
		}
	}
	return evs
}

func TestCounterPlantedPairsBeatBestSellers(t *testing.T) {
	pairs := [][2]string{{"phone", "case"}, {"printer", "ink"}, {"tent", "pegs"}}
	evs := plantedBaskets(7, 3000, 500, pairs)
	got := listsOf(t, Config{}, evs)
	for _, p := range pairs {
		for _, dir := range [][2]string{{p[0], p[1]}, {p[1], p[0]}} {
			l := got[dir[0]]
			if len(l) == 0 || l[0].ItemID != dir[1] {
				t.Errorf("top of %s's list = %+v, want %s", dir[0], l[:min(3, len(l))], dir[1])
			}
		}
	}
	// The best seller is bought with phone by more users than case is (so
	// ranking by raw counts would put it first), yet case tops the list.
	rawBest, rawCase := uint32(0), uint32(0)
	for _, e := range got["phone"] {
		switch e.ItemID {
		case "best":
			rawBest = e.Count
		case "case":
			rawCase = e.Count
		}
	}
	if rawBest <= rawCase {
		t.Fatalf("phone is bought with the best seller by %d users, with case by %d: raw counts would rank case first too, so the test shows nothing", rawBest, rawCase)
	}
}

func TestStoreRoundTripAndTTL(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	s, err := NewStore(rdb, redistest.Prefix(t, rdb))
	if err != nil {
		t.Fatal(err)
	}
	lists := []List{
		{ItemID: "a", Entries: []Entry{{"b", 0.5, 3}, {"c}", 0.25, 2}}},
		{ItemID: "weird}%id", Entries: []Entry{{"ü", 1, 1}}},
	}
	n, err := s.Write(ctx, lists, time.Hour)
	if err != nil || n != 2 {
		t.Fatalf("Write = %d, %v; want 2, nil", n, err)
	}
	got, err := s.Read(ctx, []string{"weird}%id", "missing", "a"})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]Entry{lists[1].Entries, nil, lists[0].Entries}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Read = %v, want %v", got, want)
	}
	for _, id := range []string{"a", "weird}%id"} {
		ttl, err := rdb.TTL(ctx, s.Key(id)).Result()
		if err != nil || ttl <= 0 || ttl > time.Hour {
			t.Errorf("TTL of %s = %v, %v; want within (0, 1h]", s.Key(id), ttl, err)
		}
	}
	// A rewrite replaces the list whole.
	if _, err := s.Write(ctx, []List{{ItemID: "a", Entries: []Entry{{"d", 1, 9}}}}, 0); err != nil {
		t.Fatal(err)
	}
	got, err = s.Read(ctx, []string{"a"})
	if err != nil || len(got[0]) != 1 || got[0][0].ItemID != "d" {
		t.Errorf("after rewrite Read = %v, %v; want only d", got, err)
	}
	if ttl := rdb.TTL(ctx, s.Key("a")).Val(); ttl <= time.Hour || ttl > DefaultTTL {
		t.Errorf("TTL after a write with ttl 0 = %v, want the default %v", ttl, DefaultTTL)
	}
}

func TestStoreRejectsCorruptLists(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	s, err := NewStore(rdb, redistest.Prefix(t, rdb))
	if err != nil {
		t.Fatal(err)
	}
	good := encode([]Entry{{"b", 0.5, 3}})
	for _, tt := range []struct {
		name string
		v    []byte
	}{
		{"empty", nil},
		{"wrong version", append([]byte{9}, good[1:]...)},
		{"truncated", good[:len(good)-2]},
		{"trailing bytes", append(append([]byte{}, good...), 0)},
		{"huge count", []byte{encodingVersion, 0xff, 0xff, 0x03}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := rdb.Set(ctx, s.Key("x"), tt.v, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Read(ctx, []string{"x"}); err == nil {
				t.Errorf("Read of %q succeeded, want an error", tt.v)
			}
		})
	}
}

func TestStoreReadFailsWhenRedisIsDown(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { _ = dead.Close() })
	s, err := NewStore(dead, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(context.Background(), []string{"a"}); err == nil {
		t.Error("Read from a dead Redis succeeded")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, cfg := range []Config{{Window: -1}, {MinSupport: -1}, {Cap: MaxCap + 1}, {Cap: -2}, {MaxPartners: -1}} {
		if _, err := NewCounter(cfg); err == nil {
			t.Errorf("NewCounter(%+v) succeeded, want an error", cfg)
		}
	}
}
