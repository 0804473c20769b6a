package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/itemindex"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/mf/mftest"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// largeModel is a random model of n items × 32 factors carrying its IVF
// cells (as recsys-train publishes it), so loading it quantizes but does
// not run k-means.
func largeModel(t *testing.T, n int, seed uint64) *mf.Model {
	t.Helper()
	m := mftest.Random(t, n, 32, seed)
	ix, err := itemindex.BuildIVF(m, itemindex.IVFOptions{Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	sec, _ := ix.Section()
	m, err = m.WithSections(sec)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Hot swaps of a large model (50,000 items, 10,000 under the race
// detector; the partitioned index forced)
// by ActivateModel while Recommend, SimilarItems and BatchRecommend calls
// keep coming: every call answers, from one of the two versions, with a
// full personalized answer; none fails.
func TestHotSwapOfALargeModelUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes two 50,000-item models (-short)")
	}
	const users = 20
	items := 50_000
	if raceDetector {
		items = 10_000 // the race detector makes generating and indexing 5× slower; the swaps are what it checks
	}
	r := start(t, func(c *daemon.Config) { c.IndexMinItems = -1 })
	ctx := context.Background()
	var evs []*recsysv1.Event
	for u := range users {
		for k := range 5 {
			evs = append(evs, &recsysv1.Event{EventId: strconv.Itoa(u*10 + k), UserId: "u" + strconv.Itoa(u),
				ItemId: "item-" + strconv.Itoa((u*7919+k*104729)%items), Type: recsysv1.EventType_EVENT_TYPE_VIEW})
		}
	}
	if _, err := r.events.RecordEvents(ctx, &recsysv1.RecordEventsRequest{Events: evs}); err != nil {
		t.Fatal(err)
	}
	var versions []string
	for seed := range uint64(2) {
		v, err := r.reg.Publish(ctx, largeModel(t, items, seed+1))
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v.Name())
	}
	eventually(t, "the second model", func() bool { return r.servingVersion(t) == versions[1] })
	known := func(v string) bool { return v == versions[0] || v == versions[1] }

	var calls [3]atomic.Int64 // Recommend, SimilarItems, BatchRecommend
	var mu sync.Mutex
	var failures []error
	fail := func(err error) { mu.Lock(); failures = append(failures, err); mu.Unlock() }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	load := func(kind int, call func(i int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := call(i); err != nil {
					fail(err)
				}
				calls[kind].Add(1)
			}
		}()
	}
	load(0, func(i int) error {
		res, err := r.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u" + strconv.Itoa(i%users), Count: 10})
		switch {
		case err != nil:
			return fmt.Errorf("Recommend: %w", err)
		case res.GetSource() != recsysv1.Source_SOURCE_PERSONALIZED || len(res.GetItems()) != 10 || !known(res.GetModelVersion()):
			return errors.New("Recommend: bad answer " + res.String())
		}
		return nil
	})
	load(1, func(i int) error {
		res, err := r.rec.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: "item-" + strconv.Itoa(i*31%items), Count: 10})
		switch {
		case err != nil:
			return fmt.Errorf("SimilarItems: %w", err)
		case res.GetSource() != recsysv1.Source_SOURCE_SIMILAR || len(res.GetItems()) != 10 || !known(res.GetModelVersion()):
			return errors.New("SimilarItems: bad answer " + res.String())
		}
		return nil
	})
	load(2, func(int) error {
		ids := make([]string, users)
		for u := range ids {
			ids[u] = "u" + strconv.Itoa(u)
		}
		stream, err := r.rec.BatchRecommend(ctx, &recsysv1.BatchRecommendRequest{UserIds: ids, Count: 10})
		if err != nil {
			return fmt.Errorf("BatchRecommend: %w", err)
		}
		n := 0
		for {
			a, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("BatchRecommend: %w", err)
			}
			if len(a.GetItems()) != 10 || !known(a.GetModelVersion()) {
				return errors.New("BatchRecommend: bad answer " + a.String())
			}
			n++
		}
		if n != users {
			return fmt.Errorf("BatchRecommend: %d answers for %d users", n, users)
		}
		return nil
	})
	for swap := range 4 {
		var before [3]int64
		for k := range calls {
			before[k] = calls[k].Load()
		}
		v := versions[swap%2]
		if _, err := r.models.ActivateModel(ctx, &recsysv1.ActivateModelRequest{Version: v}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "version "+v, func() bool { return r.servingVersion(t) == v })
		// Every kind of call ran across the swap and after it.
		eventually(t, "calls after the swap", func() bool {
			for k := range calls {
				if calls[k].Load() < before[k]+2 {
					return false
				}
			}
			return true
		})
	}
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d calls failed across 4 hot swaps; first: %v", len(failures), failures[0])
	}
	t.Logf("%d Recommend, %d SimilarItems, %d BatchRecommend calls across 4 hot swaps of %d items, none failed",
		calls[0].Load(), calls[1].Load(), calls[2].Load(), items)
}
