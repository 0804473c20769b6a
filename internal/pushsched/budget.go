package pushsched

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// LimitError refuses a stream (or a reservation) over one of the
// scheduler's limits; the server answers it with ResourceExhausted and a
// RetryInfo detail of RetryAfter.
type LimitError struct {
	// Limit is "streams_per_caller" or "memory_budget".
	Limit      string
	Msg        string
	RetryAfter time.Duration
}

func (e *LimitError) Error() string { return e.Msg }

// ErrTooLarge is wrapped by a reservation whose minimum can never fit the
// budget (a single user's profile larger than half of it).
var ErrTooLarge = errors.New("a reservation larger than the push memory budget allows")

// budget is the memory budget with its accounting. It has two halves: the
// streams' bases (taken at admission, refused when that half is full) and
// the rounds' bytes (a weighted FIFO semaphore: a round waits while the
// half is full). Bytes in flight, bases plus rounds, so never exceed its
// size; the peak is kept for tests and metrics.
type budget struct {
	mu       sync.Mutex
	size     int64
	inFlight int64 // bases + rounds
	peak     int64
	bases    int64 // held by admitted streams' bases, at most size/2
	rounds   int64 // held by rounds, at most roundSize()
	waiters  []*waiter
	waits    int64 // reservations that had to wait
}

func (b *budget) roundSize() int64 { return b.size - b.size/2 }

func (b *budget) roundFree() int64 { return b.roundSize() - b.rounds }

type waiter struct {
	min, max int64
	got      int64
	ready    chan struct{} // closed when granted
}

// take records n bytes as reserved by a round; mu is held.
func (b *budget) take(n int64) {
	b.rounds += n
	b.account()
}

// account recomputes inFlight and the peak; mu is held.
func (b *budget) account() {
	b.inFlight = b.bases + b.rounds
	b.peak = max(b.peak, b.inFlight)
}

// admit takes a stream's base if the bases' half has room.
func (b *budget) admit(base int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bases+base > b.size/2 {
		return false
	}
	b.bases += base
	b.account()
	return true
}

// leave returns a closed stream's base and what it still held.
func (b *budget) leave(base, rest int64) {
	b.mu.Lock()
	b.bases -= base
	b.rounds -= rest
	b.account()
	b.grant()
	b.mu.Unlock()
}

// reserve waits until at least lo bytes are free (first come, first
// served), then reserves up to hi of them.
func (b *budget) reserve(ctx context.Context, lo, hi int64) (int64, error) {
	if lo <= 0 {
		return 0, fmt.Errorf("pushsched: reserve %d bytes", lo)
	}
	hi = max(hi, lo)
	if lo > b.roundSize() {
		return 0, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, lo, b.roundSize())
	}
	b.mu.Lock()
	if free := b.roundFree(); len(b.waiters) == 0 && free >= lo {
		n := min(free, hi)
		b.take(n)
		b.mu.Unlock()
		return n, nil
	}
	w := &waiter{min: lo, max: hi, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.waits++
	b.mu.Unlock()
	select {
	case <-w.ready:
		return w.got, nil
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case <-w.ready: // granted meanwhile: give it back
			b.rounds -= w.got
			b.account()
			b.grant()
		default:
			for i, x := range b.waiters {
				if x == w {
					b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
					break
				}
			}
			b.grant() // the next waiter may fit now
		}
		b.mu.Unlock()
		return 0, ctx.Err()
	}
}

// tryReserve reserves n bytes if they are free now and nobody waits.
func (b *budget) tryReserve(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.waiters) > 0 || b.roundFree() < n {
		return false
	}
	b.take(n)
	return true
}

func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.rounds -= n
	b.account()
	b.grant()
	b.mu.Unlock()
}

// grant serves the waiters in order while the first one fits; mu is held.
func (b *budget) grant() {
	for len(b.waiters) > 0 {
		w := b.waiters[0]
		free := b.roundFree()
		if free < w.min {
			return
		}
		w.got = min(free, w.max)
		b.take(w.got)
		b.waiters = b.waiters[1:]
		close(w.ready)
	}
}
