package profile

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/event"
)

// The stream names users by pseudonym only; each user keeps one across
// batches, and a deleted user who comes back gets a new one.
func TestStreamNamesUsersByPseudonym(t *testing.T) {
	t.Parallel()
	s, c, clk := newStore(t, Config{})
	ctx := context.Background()
	const u = "user-in-plain-sight"
	record(t, s, event.Event{ID: "1", UserID: u, ItemID: "i", Type: event.View})
	clk.Set(t0.Add(time.Second))
	record(t, s, event.Event{ID: "2", UserID: u, ItemID: "j", Type: event.Purchase})
	pseudonyms := func() []string {
		msgs, err := c.XRange(ctx, s.stream, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range msgs {
			for k, v := range m.Values {
				if strings.Contains(fmt.Sprint(v), u) {
					t.Errorf("entry %s field %s names the user: %v", m.ID, k, v)
				}
			}
			out = append(out, fmt.Sprint(m.Values[fieldPseudonym]))
		}
		return out
	}
	got := pseudonyms()
	if len(got) != 2 || got[0] != got[1] || len(got[0]) != 22 {
		t.Fatalf("pseudonyms of two batches: got %q, want one 22-character pseudonym twice", got)
	}
	if _, err := s.Delete(ctx, u); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(2 * time.Second))
	record(t, s, event.Event{ID: "3", UserID: u, ItemID: "k", Type: event.View})
	if after := pseudonyms(); len(after) != 3 || after[2] == got[0] {
		t.Errorf("after deletion: got %q, want a new pseudonym for the returning user", after)
	}
	if got := readAll(t, s, time.Time{}, time.Time{}); len(got) != 1 || got[0].UserID != u || got[0].ItemID != "k" {
		t.Errorf("ReadEvents: got %+v, want only the event after the deletion, under the user's id", got)
	}
}

// Entries written before pseudonyms carry the user id; after the user's
// deletion ReadEvents skips those recorded before it, through the keyed
// hash in {g}:deleted, which holds no id.
func TestReadEventsSkipsDeletedUsersOldEntries(t *testing.T) {
	t.Parallel()
	s, c, clk := newStore(t, Config{})
	ctx := context.Background()
	old := func(id, user string, at time.Time) {
		t.Helper()
		err := c.XAdd(ctx, &redis.XAddArgs{Stream: s.stream, ID: strconv.FormatInt(at.UnixMilli(), 10) + "-*", Values: []any{
			fieldID, id, fieldUser, user, fieldItem, "i", fieldType, strconv.Itoa(int(event.View)),
			fieldTime, ms(at), fieldQuantity, "0", fieldWeight, "0"}}).Err()
		if err != nil {
			t.Fatal(err)
		}
	}
	old("1", "gone", t0)
	old("2", "stays", t0)
	clk.Set(t0.Add(time.Second))
	if _, err := s.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	members, err := c.ZRange(ctx, s.deleted, 0, -1).Result()
	if err != nil || len(members) != 1 || strings.Contains(members[0], "gone") {
		t.Errorf("tombstones: got %q, %v; want one hash", members, err)
	}
	if ttl := c.PTTL(ctx, s.deleted).Val(); ttl <= 0 || ttl > s.Config().StreamMaxAge {
		t.Errorf("tombstones' TTL: got %v, want at most the stream's retention %v", ttl, s.Config().StreamMaxAge)
	}
	old("3", "gone", t0.Add(2*time.Second)) // written by a replica not upgraded yet, after the deletion
	var got []string
	for _, e := range readAll(t, s, time.Time{}, time.Time{}) {
		got = append(got, e.UserID+"/"+e.ID)
	}
	if want := []string{"stays/2", "gone/3"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// A reverse mapping left by a Record that raced a Delete (written after
// the Delete removed the user's pn key) resolves nothing: ReadEvents checks
// that the user's pn key still holds the pseudonym.
func TestOrphanReverseMappingIsNotTrusted(t *testing.T) {
	t.Parallel()
	s, c, _ := newStore(t, Config{})
	ctx := context.Background()
	record(t, s, event.Event{ID: "1", UserID: "gone", ItemID: "i", Type: event.View})
	pn := c.Get(ctx, s.keysOf("gone").pn).Val()
	if _, err := s.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	c.Set(ctx, s.reverseKey(pn), "gone", time.Hour) // the racing Record's late write
	if got := readAll(t, s, time.Time{}, time.Time{}); len(got) != 0 {
		t.Errorf("got %+v, want nothing", got)
	}
}

// BenchmarkDeleteWithLongStream shows that Delete's work does not depend
// on the stream's length: it never reads the stream. Sizes beyond 1M are
// set with RECSYS_BENCH_STREAM (5000000 is the default StreamMaxLen).
func BenchmarkDeleteWithLongStream(b *testing.B) {
	sizes := []int{1_000, 1_000_000}
	if v, err := strconv.Atoi(os.Getenv("RECSYS_BENCH_STREAM")); err == nil && v > 0 {
		sizes = append(sizes, v)
	}
	for _, n := range sizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			s, c, _ := newStore(b, Config{})
			ctx := context.Background()
			// Fill the stream inside Redis, 10,000 entries per script call.
			fill := redis.NewScript(`for i = 1, tonumber(ARGV[1]) do
  redis.call('XADD', KEYS[1], '*', 'i', i, 'n', 'pseudonym-' .. (i % 100000), 'p', 'i' .. (i % 5000), 't', '1', 's', '0', 'q', '0', 'w', '0')
end`)
			for left := n; left > 0; left -= 10_000 {
				if err := fill.Run(ctx, c, []string{s.stream}, min(left, 10_000)).Err(); err != nil && err != redis.Nil {
					b.Fatal(err)
				}
			}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				u := "u" + strconv.Itoa(i)
				b.StopTimer()
				record(b, s, event.Event{ID: "e", UserID: u, ItemID: "i", Type: event.View})
				b.StartTimer()
				if _, err := s.Delete(ctx, u); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
