package profile

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/redistest"
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

// pipelineHook runs before each pipeline of a client.
type pipelineHook func(cmds []redis.Cmder)

func (h pipelineHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h pipelineHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}
func (h pipelineHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h(cmds)
		return next(ctx, cmds)
	}
}

// names lists the places under the store's prefix that name any of users
// in any form (redistest.IDForms).
func names(t *testing.T, s *Store, c redis.UniversalClient, users ...string) []string {
	t.Helper()
	var out []string
	redistest.EachString(t, c, s.Config().Prefix, func(key, what, v string) {
		for _, u := range users {
			for _, f := range redistest.IDForms(u) {
				if strings.Contains(v, f) {
					out = append(out, fmt.Sprintf("%s (%s): %q", key, what, v))
					return
				}
			}
		}
	})
	return out
}

// streamUsers is the users ReadEvents names, with their event counts.
func streamUsers(t *testing.T, s *Store) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, e := range readAll(t, s, time.Time{}, time.Time{}) {
		out[e.UserID]++
	}
	return out
}

// A Delete that runs between a Record's two round trips (after the user's
// script returned the pseudonym, before the reverse mapping and the stream
// are written) leaves nothing that names the user: the late writes see the
// pseudonym's dead marks.
func TestDeleteBetweenRecordsRoundTrips(t *testing.T) {
	t.Parallel()
	s, c, _ := newStore(t, Config{})
	ctx := context.Background()
	user := redistest.HostileID(t)
	hooked := redistest.Client(t)
	recorder, err := NewStore(hooked, s.Config())
	if err != nil {
		t.Fatal(err)
	}
	var deleted bool
	hooked.AddHook(pipelineHook(func(cmds []redis.Cmder) {
		for _, cmd := range cmds {
			if !deleted && slices.Contains(cmd.Args(), any(s.stream)) {
				deleted = true
				if _, err := s.Delete(ctx, user); err != nil {
					t.Errorf("Delete: %v", err)
				}
			}
		}
	}))
	record(t, recorder,
		event.Event{ID: "1", UserID: user, ItemID: "i", Type: event.View},
		event.Event{ID: "2", UserID: user, ItemID: "j", Type: event.Purchase},
		event.Event{ID: "3", UserID: "stays", ItemID: "i", Type: event.View},
	)
	if !deleted {
		t.Fatal("the Delete did not run between the Record's round trips")
	}
	for _, place := range names(t, s, c, user) {
		t.Errorf("after the race: %s", place)
	}
	if got, want := streamUsers(t, s), map[string]int{"stays": 1}; !maps.Equal(got, want) {
		t.Errorf("ReadEvents' users: got %v, want %v", got, want)
	}
	if got := c.ZRange(ctx, s.seen, 0, -1).Val(); !slices.Equal(got, []string{"stays"}) {
		t.Errorf("seen users: got %q, want only the other user", got)
	}
	// The user comes back: a new pseudonym, resolvable again.
	record(t, recorder, event.Event{ID: "4", UserID: user, ItemID: "k", Type: event.View})
	if got, want := streamUsers(t, s), map[string]int{"stays": 1, user: 1}; !maps.Equal(got, want) {
		t.Errorf("ReadEvents' users after the user came back: got %v, want %v", got, want)
	}
}

// Records and Deletes of the same user raced many times: whichever comes
// last, once the last one is a Delete nothing in Redis names the user (key
// name, value, field, member, stream entry; raw and escaped), and the
// stream gives ReadEvents none of the user's events. Left alone the two
// calls rarely interleave in the ways that matter, so most rounds hold one
// side before one of its round trips until the other side has finished
// (a hook on its client): every order of the four round trips is tried.
func TestRecordRacingDeleteLeavesNothing(t *testing.T) {
	t.Parallel()
	s, c, _ := newStore(t, Config{})
	ctx := context.Background()
	// One client, and one store, per side, each with a hook that may hold
	// its pipelines.
	type side struct {
		s      *Store
		n      atomic.Int32  // pipelines sent this round
		holdAt int32         // hold before this pipeline (1-based; 0: never)
		other  chan struct{} // closed when the other side finished
	}
	newSide := func() *side {
		rdb := redistest.Client(t)
		st, err := NewStore(rdb, s.Config())
		if err != nil {
			t.Fatal(err)
		}
		sd := &side{s: st}
		rdb.AddHook(pipelineHook(func([]redis.Cmder) {
			if sd.n.Add(1) == sd.holdAt {
				<-sd.other
			}
		}))
		return sd
	}
	rec, del := newSide(), newSide()

	const rounds = 200
	users := make([]string, rounds)
	recordLast := 0
	for i := range users {
		user := redistest.HostileID(t)
		users[i] = user
		recDone, delDone := make(chan struct{}), make(chan struct{})
		rec.n.Store(0)
		del.n.Store(0)
		rec.holdAt, rec.other, del.holdAt, del.other = 0, delDone, 0, recDone
		switch i % 5 { // 0: a free race
		case 1, 2: // the Delete before the Record's first or second round trip
			rec.holdAt = int32(i % 5)
		case 3, 4: // the Record before the Delete's first or second round trip
			del.holdAt = int32(i%5 - 2)
		}
		var recErr, delErr error
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(recDone)
			<-start
			_, recErr = rec.s.Record(ctx, []event.Event{
				{ID: "v", UserID: user, ItemID: "i", Type: event.View},
				{ID: "b", UserID: user, ItemID: "j", Type: event.Purchase},
				{ID: "s" + strconv.Itoa(i), UserID: "stays", ItemID: "i", Type: event.View},
			})
		}()
		go func() {
			defer wg.Done()
			defer close(delDone)
			<-start
			_, delErr = del.s.Delete(ctx, user)
		}()
		close(start)
		wg.Wait()
		if err := errors.Join(recErr, delErr); err != nil {
			t.Fatal(err)
		}
		// The Record came after the Delete: the user is back, as they
		// should be. Delete them once more, alone.
		if c.Exists(ctx, s.keysOf(user).pn).Val() == 1 {
			recordLast++
			if _, err := s.Delete(ctx, user); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("%d of %d races: the Record came last (deleted again after)", recordLast, rounds)
	for _, place := range names(t, s, c, users...) {
		t.Errorf("after the races: %s", place)
	}
	if got, want := streamUsers(t, s), map[string]int{"stays": rounds}; !maps.Equal(got, want) {
		t.Errorf("ReadEvents' users: got %d users (%d events of \"stays\"), want only \"stays\" with %d", len(got), got["stays"], rounds)
	}
}
