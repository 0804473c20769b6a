package profile

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/event"
)

// typicalUser returns the events of the user README.md's "Bytes per user" measures: 200
// events (180 views and carts over 60 items, 20 purchases), 12-byte item ids,
// 36-byte event ids, spread over the last 30 days.
func typicalUser(user string, now time.Time, seq int) []event.Event {
	events := make([]event.Event, 200)
	for i := range events {
		typ := event.View
		switch {
		case i%10 == 0:
			typ = event.Purchase
		case i%4 == 0:
			typ = event.AddToCart
		}
		events[i] = event.Event{
			ID:     fmt.Sprintf("%08x-0000-4000-8000-%012d", seq, i),
			UserID: user,
			ItemID: fmt.Sprintf("sku-%08d", (i*7)%60),
			Type:   typ,
			Time:   now.Add(-time.Duration(200-i) * 3 * time.Hour),
		}
		if typ == event.Purchase {
			events[i].ItemID = fmt.Sprintf("sku-%08d", 1000+i) // 20 distinct purchases
		}
	}
	return events
}

// TestMeasureBytesPerUser records one typical user and logs MEMORY USAGE of
// each key (run with -v; the figures are in README.md). It also logs
// the per-event cost of the global keys. The assertions only check that the
// measured state is the one described.
func TestMeasureBytesPerUser(t *testing.T) {
	t.Parallel()
	s, c, _ := newStore(t, Config{Now: time.Now})
	ctx := context.Background()
	const user = "user-00012345"
	record(t, s, typicalUser(user, time.Now(), 0)...)
	// ... and was shown 30 items 3 times each (30 of the 90 latest
	// recommendations' slots) without clicking them.
	var shown []event.Event
	for i := range 90 {
		shown = append(shown, event.Event{
			ID: fmt.Sprintf("imp-%d", i), UserID: user, ItemID: fmt.Sprintf("sku-%08d", 2000+i%30),
			Type: event.Impression, Time: time.Now().Add(-time.Duration(90-i) * time.Minute),
		})
	}
	record(t, s, shown...)
	// ... and was sent 20 items in push messages.
	var pushed []event.Event
	for i := range 20 {
		pushed = append(pushed, event.Event{
			ID: fmt.Sprintf("push-%d", i), UserID: user, ItemID: fmt.Sprintf("sku-%08d", 3000+i),
			Type: event.Push, Time: time.Now().Add(-time.Duration(20-i) * time.Hour),
		})
	}
	record(t, s, pushed...)

	k := s.keysOf(user)
	if n := c.LLen(ctx, k.hist).Val(); n != 200 {
		t.Fatalf("history: %d entries, want 200", n)
	}
	if n := c.ZCard(ctx, k.buy).Val(); n != 20 {
		t.Fatalf("purchased: %d items, want 20", n)
	}
	if n := c.ZCard(ctx, k.eids).Val(); n != 200 { // impressions do not use it
		t.Fatalf("dedup: %d ids, want 200", n)
	}
	if n := c.HLen(ctx, k.imp).Val(); n != 30 {
		t.Fatalf("impressions: %d items, want 30", n)
	}
	var total int64
	for _, key := range s.UserKeys(user) {
		if c.Exists(ctx, key).Val() == 0 {
			continue // dismissals and searches: none measured here
		}
		b := memoryUsage(t, c, key)
		total += b
		t.Logf("%-40s %-9s %6d bytes", key, c.ObjectEncoding(ctx, key).Val(), b)
	}
	// The pseudonym's reverse mapping, in its own slot.
	if pn := c.Get(ctx, k.pn).Val(); pn != "" {
		rk := s.reverseKey(pn)
		b := memoryUsage(t, c, rk)
		total += b
		t.Logf("%-40s %-9s %6d bytes", rk, c.ObjectEncoding(ctx, rk).Val(), b)
	} else {
		t.Fatal("the user has no stream pseudonym")
	}
	cfg, _ := c.ConfigGet(ctx, "zset-max-listpack-entries").Result()
	t.Logf("total per user: %d bytes (zset-max-listpack-entries %s)", total, cfg["zset-max-listpack-entries"])

	// Global side: 10,000 events of 1,000 users over 500 items.
	const n, batchSize = 10_000, 500
	for b := range n / batchSize {
		events := make([]event.Event, batchSize)
		for i := range events {
			j := b*batchSize + i
			events[i] = event.Event{
				ID: fmt.Sprintf("%08x-0000-4000-8000-%012d", 1, j), UserID: "user-" + strconv.Itoa(10_000_000+j%1000),
				ItemID: fmt.Sprintf("sku-%08d", j%500), Type: event.View,
			}
		}
		record(t, s, events...)
	}
	streamLen := c.XLen(ctx, s.stream).Val()
	t.Logf("stream: %.1f bytes per event (%d events)", float64(memoryUsage(t, c, s.stream))/float64(streamLen), streamLen)
	ids := c.ZCard(ctx, s.globalDedup).Val()
	t.Logf("global dedup set: %.1f bytes per remembered id (%d ids)", float64(memoryUsage(t, c, s.globalDedup))/float64(ids), ids)
	pop := s.popularityKey(time.Now().UnixMilli() / 3_600_000 * 3_600_000)
	t.Logf("popularity bucket: %.1f bytes per item (%d items)", float64(memoryUsage(t, c, pop))/float64(c.ZCard(ctx, pop).Val()), c.ZCard(ctx, pop).Val())
	seen := c.ZCard(ctx, s.seen).Val()
	if seen != 1001 { // the 1,000 users and the typical one
		t.Fatalf("seen index: %d users, want 1001", seen)
	}
	t.Logf("seen index: %.1f bytes per user (%d users)", float64(memoryUsage(t, c, s.seen))/float64(seen), seen)
}

func memoryUsage(t testing.TB, c redis.UniversalClient, key string) int64 {
	t.Helper()
	// SAMPLES 0 measures every element instead of estimating from 5.
	n, err := c.MemoryUsage(context.Background(), key, 0).Result()
	if err != nil {
		t.Fatalf("MEMORY USAGE %s: %v", key, err)
	}
	return n
}

// BenchmarkRecord records batches of 100 new events over 10 users (whose
// histories are at the cap after the first iterations), one round trip each.
func BenchmarkRecord(b *testing.B) {
	s, _, _ := newStore(b, Config{Now: time.Now})
	ctx := context.Background()
	events := make([]event.Event, 100)
	seq := 0
	b.ReportAllocs()
	for b.Loop() {
		for i := range events {
			seq++
			events[i] = event.Event{
				ID: strconv.Itoa(seq), UserID: "user-" + strconv.Itoa(i%10),
				ItemID: "sku-" + strconv.Itoa(seq%5000), Type: event.Type(1 + seq%3),
			}
		}
		if _, err := s.Record(ctx, events); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(events)), "ns/event")
}

// BenchmarkLoad loads the typical user of TestMeasureBytesPerUser.
func BenchmarkLoad(b *testing.B) {
	s, _, _ := newStore(b, Config{Now: time.Now})
	ctx := context.Background()
	record(b, s, typicalUser("user-1", time.Now(), 0)...)
	b.ReportAllocs()
	for b.Loop() {
		p, err := s.Load(ctx, "user-1")
		if err != nil {
			b.Fatal(err)
		}
		if len(p.History) != 200 {
			b.Fatalf("history: %d entries", len(p.History))
		}
	}
}

// BenchmarkPopularLargeCatalog reads the top 1,000 (what recsysd's cache
// keeps) when the current bucket and the past each hold every one of a
// catalog's items: the case of a shop whose whole catalog sells every hour,
// and of the serving benchmark, whose import puts 100,000 items into one
// bucket. Redis is single-threaded, so this is also how long every other
// command, profile loads included, waits behind each refresh.
func BenchmarkPopularLargeCatalog(b *testing.B) {
	for _, items := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("items=%d", items), func(b *testing.B) {
			s, c, _ := newStore(b, Config{Now: time.Now})
			ctx := context.Background()
			bucketMs := s.cfg.PopularityBucket.Milliseconds()
			current := time.Now().UnixMilli() / bucketMs * bucketMs
			for i := range int64(2) {
				key := s.popularityKey(current - i*bucketMs)
				for lo := 0; lo < items; lo += 10_000 {
					z := make([]redis.Z, min(10_000, items-lo))
					for j := range z {
						id := lo + j
						z[j] = redis.Z{Member: "sku-" + strconv.Itoa(id), Score: float64(1 + (id*7919+int(i))%1000)}
					}
					if err := c.ZAdd(ctx, key, z...).Err(); err != nil {
						b.Fatal(err)
					}
				}
			}
			// The first call of a bucket period builds the cached sum of
			// the past buckets (once an hour); measure the refreshes after it.
			if _, err := s.Popular(ctx, 1000); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				top, err := s.Popular(ctx, 1000)
				if err != nil {
					b.Fatal(err)
				}
				if len(top) != 1000 {
					b.Fatalf("got %d items", len(top))
				}
			}
		})
	}
}

// BenchmarkPopular reads the top 100 of a full 7-day window of hourly
// buckets (168) with the given number of items per bucket.
func BenchmarkPopular(b *testing.B) {
	for _, perBucket := range []int{100, 1000} {
		b.Run(fmt.Sprintf("items_per_bucket=%d", perBucket), func(b *testing.B) {
			s, c, _ := newStore(b, Config{Now: time.Now})
			ctx := context.Background()
			bucketMs := s.cfg.PopularityBucket.Milliseconds()
			current := time.Now().UnixMilli() / bucketMs * bucketMs
			pipe := c.Pipeline()
			for i := range bucketCount(s.cfg.PopularityWindow, s.cfg.PopularityBucket) {
				key := s.popularityKey(current - i*bucketMs)
				z := make([]redis.Z, perBucket)
				for j := range z {
					z[j] = redis.Z{Member: "sku-" + strconv.Itoa((j*31+int(i))%(perBucket*2)), Score: float64(1 + j%17)}
				}
				pipe.ZAdd(ctx, key, z...)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				top, err := s.Popular(ctx, 100)
				if err != nil {
					b.Fatal(err)
				}
				if len(top) != 100 {
					b.Fatalf("got %d items", len(top))
				}
			}
		})
	}
}
