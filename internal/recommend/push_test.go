package recommend

import (
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/profile"
)

// countingPushProfiles serves one profile per id (the history differs by
// user) and counts the load calls.
type countingPushProfiles struct {
	loads atomic.Int64
	now   time.Time
	items int
}

func (c *countingPushProfiles) LoadMany(_ context.Context, ids []string) ([]profile.Profile, error) {
	c.loads.Add(1)
	out := make([]profile.Profile, len(ids))
	for i, id := range ids {
		n, _ := strconv.Atoi(id[len("user-"):])
		p := profile.Profile{UserID: id, FirstSeen: c.now.Add(-time.Hour), LastSeen: c.now}
		for k := range 5 {
			p.History = append(p.History, profile.Entry{ItemID: "item-" + strconv.Itoa((n*7+k*13)%c.items),
				Type: event.View, Time: c.now.Add(-time.Duration(k) * time.Minute)})
		}
		out[i] = p
	}
	return out, nil
}

func (c *countingPushProfiles) EachSeenUser(context.Context, time.Time, time.Time, int, func([]string) error) error {
	return nil
}

func pushEngine(t *testing.T, workers int) (*Engine, *countingPushProfiles) {
	t.Helper()
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	const items = 500
	pp := &countingPushProfiles{now: now, items: items}
	eng, err := New(Config{Now: func() time.Time { return now }, PushProfiles: pp, PushWorkers: workers},
		staticProfiles{}, nil, NewPopular(noPopular{}, 10, quietLog()))
	if err != nil {
		t.Fatal(err)
	}
	eng.SetModel(benchModel(t, items, 16))
	return eng, pp
}

func userIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "user-" + strconv.Itoa(i)
	}
	return ids
}

// Cancelling a call in the middle of its stream stops it: no further
// blocks of users are loaded, and Push returns the context's error.
func TestPushStopsWhenCancelledMidStream(t *testing.T) {
	eng, pp := pushEngine(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	emitted := 0
	err := eng.Push(ctx, PushRequest{UserIDs: userIDs(10 * pushLoadBlock), Count: 3}, func(PushResult) error {
		emitted++
		if emitted == 1 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	// The round being answered is finished (its results are emitted in
	// one go; a call's first round is pushScoreBlock users); the next is
	// never loaded.
	if got := pp.loads.Load(); got != 1 {
		t.Errorf("%d blocks loaded after cancelling in the first, want 1", got)
	}
	if emitted != pushScoreBlock {
		t.Errorf("%d answers emitted, want the first round's %d", emitted, pushScoreBlock)
	}
}

// Concurrent calls share the engine's score buffers (one here): they wait
// for each other instead of allocating more, and each gets the answers it
// would get alone.
func TestConcurrentPushesShareTheBuffers(t *testing.T) {
	eng, _ := pushEngine(t, 1)
	req := PushRequest{UserIDs: userIDs(3*pushScoreBlock + 5), Count: 4}
	collect := func() ([][]string, error) {
		var out [][]string
		err := eng.Push(context.Background(), req, func(r PushResult) error {
			var ids []string
			for _, it := range r.Items {
				ids = append(ids, it.ItemID)
			}
			out = append(out, ids)
			return nil
		})
		return out, err
	}
	alone, err := collect()
	if err != nil {
		t.Fatal(err)
	}
	if len(alone) != len(req.UserIDs) || len(alone[0]) != 4 {
		t.Fatalf("alone: %d answers, first %v", len(alone), alone[0])
	}
	var wg sync.WaitGroup
	results := make([][][]string, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = collect() })
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if !slices.EqualFunc(results[i], alone, slices.Equal) {
			t.Errorf("call %d answered differently from the call alone", i)
		}
	}
	if got := len(eng.pushFree); got != 1 {
		t.Errorf("%d buffers back in the engine's set, want 1", got)
	}
}

// With the partitioned index forced and a probe of a few cells (so
// searches take several rounds), BatchRecommend — whose users' searches of
// a score block run their rounds together — answers every user what
// Recommend, searching for that user alone, answers: the same items and
// scores in the same order, with and without a filter and the category
// cap, for blocks of 32 users and a last short one.
func TestPushBlockSearchAnswersAsRecommendAlone(t *testing.T) {
	const n, users = 3000, 70
	for _, probe := range []int{1, 3} {
		eng, _, _ := shopEngine(t, n, Config{IndexMinItems: -1, IndexProbe: probe})
		if si := eng.indexFor(eng.Model()); si == nil || si.ix.Cells() < 10 {
			t.Fatal("no partitioned index")
		}
		m := eng.Model()
		now := eng.cfg.Now()
		rng := rand.New(rand.NewPCG(4, 4))
		pp := variedPushProfiles{}
		ids := userIDs(users)
		for _, id := range ids {
			p := profile.Profile{FirstSeen: now.Add(-time.Hour), LastSeen: now}
			for k := range 1 + rng.IntN(30) {
				p.History = append(p.History, profile.Entry{ItemID: m.ItemID(int32(rng.IntN(n))), Type: event.View, Time: now.Add(-time.Duration(k) * time.Minute)})
			}
			pp[id] = p
		}
		eng.profiles, eng.cfg.PushProfiles = pp, pp
		ctx := context.Background()
		for _, c := range []struct {
			count, maxPer int
			filter        Filter
		}{
			{10, -1, Filter{}},
			{20, 2, Filter{}},
			{15, -1, Filter{ExcludeCategories: []string{"c0"}}},
		} {
			got := map[string][]Item{}
			err := eng.Push(ctx, PushRequest{UserIDs: ids, Count: c.count, MaxPerCategory: c.maxPer, Filter: c.filter},
				func(r PushResult) error { got[r.UserID] = r.Items; return nil })
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				want, err := eng.Recommend(ctx, Request{UserID: id, Count: c.count, MaxPerCategory: c.maxPer, Filter: c.filter})
				if err != nil {
					t.Fatal(err)
				}
				if len(got[id]) != c.count || !reflect.DeepEqual(got[id], want.Items) {
					t.Fatalf("probe %d, %+v, %s: Push %v, Recommend %v", probe, c, id, head(got[id]), head(want.Items))
				}
			}
		}
	}
}
