package cooccur

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/redistest"
	"github.com/recsys-dev/recsys/internal/synth"
)

// BenchmarkCounter is the job's whole co-occurrence computation (Add every
// event, then Lists) on a generated shop of 1,000,000 events (20,000 users,
// 10,000 items, views, carts and purchases over 60 days; about 7% are
// purchases), and the same events all turned into purchases (the worst case).
func BenchmarkCounter(b *testing.B) {
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	evs := make([]event.Event, 0, 1_000_000)
	if err := synth.Generate(context.Background(), synth.Config{Users: 20_000, Items: 10_000, Events: 1_000_000, Seed: 1,
		Start: end.Add(-60 * 24 * time.Hour), End: end}, func(e event.Event) error {
		evs = append(evs, e)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.Run("events=generated", func(b *testing.B) { benchCounter(b, evs) })
	// The worst case: every one of the 1,000,000 events a purchase.
	for i := range evs {
		evs[i].Type = event.Purchase
	}
	b.Run("events=all-purchases", func(b *testing.B) { benchCounter(b, evs) })
}

func benchCounter(b *testing.B, evs []event.Event) {
	purchases, lists, entries := 0, 0, 0
	b.ReportAllocs()
	for b.Loop() {
		c, err := NewCounter(Config{})
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range evs {
			c.Add(e)
		}
		ls := c.Lists()
		purchases, lists, entries = 0, len(ls), 0
		for _, u := range c.byUser {
			purchases += len(u)
		}
		for _, l := range ls {
			entries += len(l.Entries)
		}
	}
	b.ReportMetric(float64(purchases), "purchases")
	b.ReportMetric(float64(lists), "lists")
	b.ReportMetric(float64(entries), "entries")
}

// BenchmarkStoreRead is the lists' read of one BoughtTogether on the test
// Redis: one pipelined round trip for a cart of 1 and of 5 items with 50
// entries each.
func BenchmarkStoreRead(b *testing.B) {
	rdb := redistest.Client(b)
	s, err := NewStore(rdb, redistest.Prefix(b, rdb))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var lists []List
	for i := range 5 {
		l := List{ItemID: "item-" + strconv.Itoa(i)}
		for k := range 50 {
			l.Entries = append(l.Entries, Entry{ItemID: fmt.Sprintf("item-%d", 1000+k), Score: 1 / float32(k+1), Count: 3})
		}
		lists = append(lists, l)
	}
	if _, err := s.Write(ctx, lists, time.Hour); err != nil {
		b.Fatal(err)
	}
	for _, cart := range []int{1, 5} {
		b.Run("cart="+strconv.Itoa(cart), func(b *testing.B) {
			ids := make([]string, cart)
			for i := range ids {
				ids[i] = lists[i].ItemID
			}
			b.ReportAllocs()
			for b.Loop() {
				got, err := s.Read(ctx, ids)
				if err != nil || len(got[cart-1]) != 50 {
					b.Fatal(err)
				}
			}
		})
	}
}
