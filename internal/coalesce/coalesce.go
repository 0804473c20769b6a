// Package coalesce scores concurrent requests' query vectors against every
// item of a model together, one pass over the item factors per block of
// requests instead of one per request.
//
// Scoring one user against 100,000 items × 64 factors reads 25.6 MB of
// factors for 6.4 M multiply-adds: it is bound by memory bandwidth, and a
// busy server spends its cores streaming the same factors once per request.
// The block kernel of mf.Model.ScoresBlock reads each factor once per four
// users and keeps tiles of the factors in L2 while every user of the block
// runs over them, so a block of 32 users costs a small multiple of one
// user's pass.
//
// The coalescer never makes an idle server wait. It has Slots scoring slots
// (default GOMAXPROCS): a request that finds a free slot is scored alone at
// once, in its own goroutine, exactly as without the coalescer. Requests
// that arrive while every slot is busy queue; the next slot to free up takes
// up to MaxBlock of them (of the same model, at most BlockBytes of scores)
// and scores them as one block, then the next block, until the queue is
// empty. So blocks form only under load, and grow with it.
//
// Every caller keeps its own context: a caller whose context ends while it
// waits leaves the queue, or, when its block is already being scored, its
// share of the block is dropped when the block is done; it returns the
// context's error and nobody else notices.
package coalesce

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/recsys-dev/recsys/internal/mf"
)

// Defaults of the recsysd flags.
const (
	DefaultMaxBlock = 32
	DefaultBlockMiB = 32
)

// Config tunes a Coalescer.
type Config struct {
	// MaxBlock is the most requests scored in one block; 0 turns
	// coalescing off (New returns nil).
	MaxBlock int
	// BlockBytes caps one block's score buffer (requests × items × 4
	// bytes); a block of a large model holds fewer requests. Default
	// DefaultBlockMiB MiB.
	BlockBytes int64
	// Slots is how many scorings (single requests or blocks) run at once;
	// default GOMAXPROCS.
	Slots int
}

// Stats counts what a Coalescer did.
type Stats struct {
	Alone     uint64 // requests scored alone, on a free slot
	Blocks    uint64 // blocks scored
	InBlocks  uint64 // requests scored in blocks
	Abandoned uint64 // requests whose context ended while they waited
}

// Coalescer gathers concurrent scoring requests into blocks. A nil
// *Coalescer scores every request alone. It is safe for concurrent use.
type Coalescer struct {
	cfg Config

	mu    sync.Mutex
	free  int     // free slots; > 0 only while the queue is empty
	queue []*call // waiting requests, oldest first

	calls  sync.Pool // *call
	blocks sync.Pool // *block

	alone, blocksRun, inBlocks, abandoned atomic.Uint64

	// Test hooks: onQueue runs after a request joined the queue, onLeave
	// after a request left on its context (both outside the lock),
	// beforeRun before a block is scored.
	onQueue, onLeave func()
	beforeRun        func()
}

// New returns a coalescer, or nil (coalescing off) when cfg.MaxBlock is 0.
func New(cfg Config) (*Coalescer, error) {
	switch {
	case cfg.MaxBlock < 0:
		return nil, fmt.Errorf("coalesce: max block must be >= 0, got %d", cfg.MaxBlock)
	case cfg.BlockBytes < 0:
		return nil, fmt.Errorf("coalesce: block bytes must be >= 0, got %d", cfg.BlockBytes)
	case cfg.Slots < 0:
		return nil, fmt.Errorf("coalesce: slots must be >= 0, got %d", cfg.Slots)
	case cfg.MaxBlock == 0:
		return nil, nil
	}
	if cfg.BlockBytes == 0 {
		cfg.BlockBytes = DefaultBlockMiB << 20
	}
	if cfg.Slots == 0 {
		cfg.Slots = runtime.GOMAXPROCS(0)
	}
	c := &Coalescer{cfg: cfg, free: cfg.Slots}
	c.calls.New = func() any { return &call{done: make(chan struct{}, 1)} }
	c.blocks.New = func() any { return &block{} }
	return c, nil
}

// Stats returns the counts so far (zero for a nil coalescer).
func (c *Coalescer) Stats() Stats {
	if c == nil {
		return Stats{}
	}
	return Stats{Alone: c.alone.Load(), Blocks: c.blocksRun.Load(), InBlocks: c.inBlocks.Load(), Abandoned: c.abandoned.Load()}
}

// ErrScoring is returned to the requests of a block whose scoring failed
// (a bug: the kernel panicked); the panic is not propagated.
var ErrScoring = errors.New("coalesce: block scoring failed")

// Scores holds one request's scores. Values is the caller's own buffer or
// a row of a shared block: the caller reads it until it calls Release,
// once, and not after.
type Scores struct {
	Values []float32
	blk    *block
}

// Release gives the scores back; Values must not be used afterwards.
func (s Scores) Release() {
	if s.blk != nil {
		s.blk.release()
	}
}

// Scores returns y_i·x for every item i of m, the values m.Scores writes
// (up to float32 summation order: a block runs mf's block kernel). When the
// request is scored alone the values are written to own (len ≥
// m.NumItems()). It returns ctx's error if ctx ends first.
func (c *Coalescer) Scores(ctx context.Context, m *mf.Model, x, own []float32) (Scores, error) {
	n := m.NumItems()
	if len(x) != m.Factors() {
		return Scores{}, fmt.Errorf("coalesce: query has %d factors, the model %d", len(x), m.Factors())
	}
	if len(own) < n {
		return Scores{}, fmt.Errorf("coalesce: buffer of %d scores for %d items", len(own), n)
	}
	if err := ctx.Err(); err != nil {
		return Scores{}, err
	}
	if c == nil {
		m.Scores(x, own)
		return Scores{Values: own[:n]}, nil
	}
	c.mu.Lock()
	if c.free > 0 {
		c.free--
		c.mu.Unlock()
		m.Scores(x, own)
		c.alone.Add(1)
		c.releaseSlot()
		return Scores{Values: own[:n]}, nil
	}
	cl := c.calls.Get().(*call)
	cl.m, cl.x, cl.state = m, x, queued
	c.queue = append(c.queue, cl)
	c.mu.Unlock()
	if c.onQueue != nil {
		c.onQueue()
	}

	select {
	case <-cl.done:
		// The result is ours; only this goroutine touches cl now.
		res, err := cl.result()
		c.putCall(cl)
		return res, err
	case <-ctx.Done():
	}
	c.abandoned.Add(1)
	c.mu.Lock()
	switch cl.state {
	case queued:
		c.queue = slices.DeleteFunc(c.queue, func(o *call) bool { return o == cl })
		c.mu.Unlock()
		c.putCall(cl)
	case taken: // its block is being scored: the block's runner drops it
		cl.state = abandoned
		c.mu.Unlock()
	case delivered: // done raced with ctx: give the share back
		c.mu.Unlock()
		<-cl.done
		if res, err := cl.result(); err == nil {
			res.Release()
		}
		c.putCall(cl)
	default:
		c.mu.Unlock()
	}
	if c.onLeave != nil {
		c.onLeave()
	}
	return Scores{}, ctx.Err()
}

// The states of a queued request.
const (
	queued    = iota + 1 // in c.queue
	taken                // in a block being scored
	abandoned            // taken, and its caller has left
	delivered            // scored; done is signalled
)

// call is one queued request.
type call struct {
	m     *mf.Model
	x     []float32 // the caller's query: read only while queued (under c.mu)
	state int       // guarded by c.mu
	done  chan struct{}
	blk   *block
	row   int
	err   error
}

func (cl *call) result() (Scores, error) {
	if cl.err != nil {
		return Scores{}, cl.err
	}
	n := cl.m.NumItems()
	return Scores{Values: cl.blk.scores[cl.row*n : (cl.row+1)*n], blk: cl.blk}, nil
}

func (c *Coalescer) putCall(cl *call) {
	*cl = call{done: cl.done}
	c.calls.Put(cl)
}

// block is one block's buffers. refs counts the requests still reading its
// scores; the last Release puts it back in the pool.
type block struct {
	c      *Coalescer
	xs     []float32
	scores []float32
	calls  []*call
	refs   atomic.Int32
}

func (b *block) release() {
	if b.refs.Add(-1) == 0 {
		b.c.blocks.Put(b)
	}
}

// maxBlock is the most requests of model m in one block.
func (c *Coalescer) maxBlock(m *mf.Model) int {
	per := int64(m.NumItems()) * 4
	if per == 0 {
		return c.cfg.MaxBlock
	}
	return int(max(1, min(int64(c.cfg.MaxBlock), c.cfg.BlockBytes/per)))
}

// releaseSlot is called by the holder of a slot when it is done: with an
// empty queue the slot is freed; otherwise a goroutine takes the slot over
// and scores the queue block by block (the holder returns to its caller
// at once).
func (c *Coalescer) releaseSlot() {
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.free++
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	go c.drain()
}

// drain scores the queue block by block while it holds a slot, and frees
// the slot when the queue is empty.
func (c *Coalescer) drain() {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.free++
			c.mu.Unlock()
			return
		}
		b := c.take()
		c.mu.Unlock()
		c.run(b)
	}
}

// take removes the next block from the queue: the oldest request and the
// following ones of the same model, up to maxBlock; their queries are copied
// into the block. The caller holds c.mu.
func (c *Coalescer) take() *block {
	m := c.queue[0].m
	limit := c.maxBlock(m)
	b := c.blocks.Get().(*block)
	b.c, b.calls = c, b.calls[:0]
	f := m.Factors()
	b.xs = b.xs[:0]
	keep := c.queue[:0]
	for _, cl := range c.queue {
		if cl.m != m || len(b.calls) == limit {
			keep = append(keep, cl)
			continue
		}
		cl.state = taken
		b.calls = append(b.calls, cl)
		b.xs = append(b.xs, cl.x[:f]...)
		cl.x = nil
	}
	clear(c.queue[len(keep):])
	c.queue = keep
	return b
}

// run scores block b and hands each waiting request its row.
func (c *Coalescer) run(b *block) {
	if c.beforeRun != nil {
		c.beforeRun()
	}
	m := b.calls[0].m
	k, n := len(b.calls), m.NumItems()
	if cap(b.scores) < k*n {
		b.scores = make([]float32, k*n)
	}
	b.scores = b.scores[:k*n]
	err := scoreBlock(m, b.xs, k, b.scores)
	c.blocksRun.Add(1)
	c.inBlocks.Add(uint64(k))

	b.refs.Store(int32(k) + 1) // +1: ours, until every call is handed out
	c.mu.Lock()
	for j, cl := range b.calls {
		if cl.state == abandoned {
			b.refs.Add(-1)
			c.putCall(cl)
			continue
		}
		cl.blk, cl.row, cl.err, cl.state = b, j, err, delivered
		if err != nil {
			b.refs.Add(-1)
		}
		cl.done <- struct{}{}
	}
	c.mu.Unlock()
	clear(b.calls)
	b.calls = b.calls[:0]
	b.release()
}

// scoreBlock runs mf's block kernel; a panic in it becomes ErrScoring for
// the block's requests instead of taking the process down.
func scoreBlock(m *mf.Model, xs []float32, k int, out []float32) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrScoring, r)
		}
	}()
	m.ScoresBlock(xs, k, out)
	return nil
}
