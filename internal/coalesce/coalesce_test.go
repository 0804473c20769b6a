package coalesce

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/mf/mftest"
)

// queries returns k random query vectors of f factors.
func queries(k, f int, seed uint64) [][]float32 {
	rng := rand.New(rand.NewPCG(seed, seed))
	out := make([][]float32, k)
	for i := range out {
		out[i] = make([]float32, f)
		for j := range out[i] {
			out[i][j] = rng.Float32()*2 - 1
		}
	}
	return out
}

// checkScores fails unless got are m.Scores(x) up to float32 summation
// order.
func checkScores(t *testing.T, m *mf.Model, x, got []float32) {
	t.Helper()
	want := make([]float32, m.NumItems())
	m.Scores(x, want)
	if len(got) != len(want) {
		t.Fatalf("got %d scores, want %d", len(got), len(want))
	}
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-4*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("item %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

// heldCoalescer returns a coalescer with one slot, held by the test until
// it calls the returned release; queued counts the requests that joined
// the queue.
func heldCoalescer(t *testing.T, maxBlock int, blockBytes int64) (c *Coalescer, queued chan struct{}, release func()) {
	t.Helper()
	c, err := New(Config{MaxBlock: maxBlock, BlockBytes: blockBytes, Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	queued = make(chan struct{}, 1000)
	c.onQueue = func() { queued <- struct{}{} }
	c.mu.Lock()
	c.free-- // the test holds the only slot
	c.mu.Unlock()
	return c, queued, c.releaseSlot
}

// Requests that queue behind a busy slot are scored in blocks, each
// getting its own query's scores; the block size follows MaxBlock and the
// block memory cap.
func TestQueuedRequestsAreScoredInBlocksWithTheirOwnAnswers(t *testing.T) {
	m := mftest.Random(t, 300, 24, 1) // not a multiple of the kernel width
	tests := []struct {
		name       string
		maxBlock   int
		blockBytes int64
		callers    int
		wantBlocks uint64
	}{
		{"one block", 32, 0, 13, 1},
		{"max block splits", 4, 0, 10, 3},
		{"memory cap splits", 32, 300 * 4 * 5, 12, 3}, // 5 requests per block
		{"a block of one", 1, 0, 3, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, queued, release := heldCoalescer(t, tt.maxBlock, tt.blockBytes)
			xs := queries(tt.callers, m.Factors(), 7)
			got := make([][]float32, tt.callers)
			errs := make([]error, tt.callers)
			var wg sync.WaitGroup
			for i := range tt.callers {
				wg.Go(func() {
					sc, err := c.Scores(context.Background(), m, xs[i], make([]float32, m.NumItems()))
					if err == nil {
						got[i] = append([]float32(nil), sc.Values...)
						sc.Release()
					}
					errs[i] = err
				})
			}
			for range tt.callers {
				<-queued
			}
			release()
			wg.Wait()
			for i := range tt.callers {
				if errs[i] != nil {
					t.Fatalf("caller %d: %v", i, errs[i])
				}
				checkScores(t, m, xs[i], got[i])
			}
			st := c.Stats()
			if st.Blocks != tt.wantBlocks || st.InBlocks != uint64(tt.callers) || st.Alone != 0 {
				t.Errorf("got %+v, want %d blocks of %d requests, none alone", st, tt.wantBlocks, tt.callers)
			}
		})
	}
}

// An idle coalescer scores a request at once, alone, into the caller's
// buffer; a nil coalescer (coalescing off) does the same.
func TestIdleAndOffScoreAlone(t *testing.T) {
	m := mftest.Random(t, 100, 8, 2)
	x := queries(1, 8, 3)[0]
	on, err := New(Config{MaxBlock: 8})
	if err != nil {
		t.Fatal(err)
	}
	off, err := New(Config{MaxBlock: 0})
	if err != nil || off != nil {
		t.Fatalf("New with MaxBlock 0: got %v, %v; want nil, nil", off, err)
	}
	for name, c := range map[string]*Coalescer{"idle": on, "off": off} {
		t.Run(name, func(t *testing.T) {
			own := make([]float32, m.NumItems())
			sc, err := c.Scores(context.Background(), m, x, own)
			if err != nil {
				t.Fatal(err)
			}
			if &sc.Values[0] != &own[0] {
				t.Error("the scores are not in the caller's buffer")
			}
			checkScores(t, m, x, sc.Values)
			sc.Release()
		})
	}
	if st := on.Stats(); st.Alone != 1 || st.Blocks != 0 {
		t.Errorf("idle: got %+v, want one request alone", st)
	}
}

// A caller whose context ends while it waits in the queue returns the
// context's error (its deadline honoured) and leaves the queue; the others
// get their scores.
func TestCancelledOrLateCallerLeavesTheQueue(t *testing.T) {
	m := mftest.Random(t, 200, 16, 4)
	c, _, release := heldCoalescer(t, 32, 0)
	xs := queries(3, 16, 5)

	cctx, cancel := context.WithCancel(context.Background())
	dctx, cancelD := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancelD()
	ctxs := []context.Context{context.Background(), cctx, dctx}
	errs := make([]error, 3)
	got := make([][]float32, 3)
	done := make([]chan struct{}, 3)
	for i := range 3 {
		done[i] = make(chan struct{})
		go func() {
			defer close(done[i])
			sc, err := c.Scores(ctxs[i], m, xs[i], make([]float32, m.NumItems()))
			if err == nil {
				got[i] = append([]float32(nil), sc.Values...)
				sc.Release()
			}
			errs[i] = err
		}()
	}
	cancel()
	// The test holds the only slot: callers 1 and 2 can only return by
	// their contexts, caller 0 only after the release.
	<-done[1]
	<-done[2]
	select {
	case <-done[0]:
		t.Fatal("caller 0 returned while the slot was held")
	default:
	}
	release()
	<-done[0]
	if errs[0] != nil {
		t.Fatalf("the remaining caller: %v", errs[0])
	}
	checkScores(t, m, xs[0], got[0])
	if !errors.Is(errs[1], context.Canceled) {
		t.Errorf("cancelled caller: got %v, want context.Canceled", errs[1])
	}
	if !errors.Is(errs[2], context.DeadlineExceeded) {
		t.Errorf("late caller: got %v, want context.DeadlineExceeded", errs[2])
	}
	if st := c.Stats(); st.InBlocks != 1 || st.Alone != 0 {
		t.Errorf("got %+v, want 1 request in blocks", st)
	}
}

// A caller cancelled while its block is being scored returns at once with
// its context's error; the block finishes for the others.
func TestCallerCancelledDuringItsBlock(t *testing.T) {
	m := mftest.Random(t, 200, 16, 6)
	c, queued, release := heldCoalescer(t, 32, 0)
	xs := queries(5, 16, 7)
	ctx, cancel := context.WithCancel(context.Background())
	running, cont, left := make(chan struct{}), make(chan struct{}), make(chan struct{}, 1)
	c.onLeave = func() { left <- struct{}{} }
	c.beforeRun = func() {
		close(running)
		<-cont
	}
	errs := make([]error, 5)
	got := make([][]float32, 5)
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			cx := context.Background()
			if i == 2 {
				cx = ctx
			}
			sc, err := c.Scores(cx, m, xs[i], make([]float32, m.NumItems()))
			if err == nil {
				got[i] = append([]float32(nil), sc.Values...)
				sc.Release()
			}
			errs[i] = err
		})
	}
	for range 5 {
		<-queued
	}
	release()
	<-running
	cancel()
	<-left // the cancelled caller returns while its block is still held
	close(cont)
	wg.Wait()
	for i := range 5 {
		if i == 2 {
			if !errors.Is(errs[i], context.Canceled) {
				t.Errorf("cancelled caller: got %v", errs[i])
			}
			continue
		}
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		checkScores(t, m, xs[i], got[i])
	}
}

// Bad input is an error, not a panic.
func TestBadInput(t *testing.T) {
	m := mftest.Random(t, 50, 8, 8)
	c, err := New(Config{MaxBlock: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Scores(context.Background(), m, make([]float32, 7), make([]float32, 50)); err == nil {
		t.Error("a query of the wrong length was accepted")
	}
	if _, err := c.Scores(context.Background(), m, make([]float32, 8), make([]float32, 49)); err == nil {
		t.Error("a short buffer was accepted")
	}
	for _, cfg := range []Config{{MaxBlock: -1}, {MaxBlock: 1, BlockBytes: -1}, {MaxBlock: 1, Slots: -1}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// Many concurrent callers on few slots, some cancelled at random: every
// caller that gets an answer gets its own query's scores (run with -race).
func TestConcurrentCallers(t *testing.T) {
	m := mftest.Random(t, 500, 32, 9)
	c, err := New(Config{MaxBlock: 8, Slots: 2})
	if err != nil {
		t.Fatal(err)
	}
	xs := queries(64, 32, 10)
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			for r := range 5 {
				ctx, cancel := context.WithCancel(context.Background())
				if (i+r)%7 == 0 {
					cancel()
				}
				sc, err := c.Scores(ctx, m, xs[i], make([]float32, m.NumItems()))
				cancel()
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						t.Errorf("caller %d: %v", i, err)
					}
					continue
				}
				checkScores(t, m, xs[i], sc.Values)
				sc.Release()
			}
		})
	}
	wg.Wait()
}

// BenchmarkScores scores one query per call from 32 goroutines (ns/op is
// per request), alone every time ("off") or coalesced.
func BenchmarkScores(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		m := mftest.Random(b, n, 64, 1)
		xs := queries(64, 64, 2)
		for _, maxBlock := range []int{0, DefaultMaxBlock} {
			name := "off"
			if maxBlock > 0 {
				name = "coalesced"
			}
			b.Run(name+"/items="+strconv.Itoa(n), func(b *testing.B) {
				c, err := New(Config{MaxBlock: maxBlock})
				if err != nil {
					b.Fatal(err)
				}
				var next atomic.Int64
				b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					own := make([]float32, n)
					x := xs[next.Add(1)%int64(len(xs))]
					for pb.Next() {
						sc, err := c.Scores(context.Background(), m, x, own)
						if err != nil {
							b.Error(err)
							return
						}
						sc.Release()
					}
				})
				st := c.Stats()
				if st.Blocks > 0 {
					b.ReportMetric(float64(st.InBlocks)/float64(st.Blocks), "reqs/block")
				}
			})
		}
	}
}
