// Package modelset keeps the model versions a server answers with next to
// its current model: experiment arms may name a published version, so
// several versions serve at once. A version is built (loaded from the
// registry, its engine made) on demand, by the first request that needs
// it; requests for the same version meanwhile wait for that one build
// instead of starting their own. At most Capacity versions are held;
// building one more evicts the least recently used. An evicted version's
// requests in flight finish on the snapshot they hold.
//
// The set is generic over what a version becomes (the daemon keeps a
// *recommend.Engine per version), so it holds no model code and its tests
// need no models.
package modelset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// ErrNoRoom is returned by Get when the set holds no versions at all
// (Capacity 0): the caller answers with its current model.
var ErrNoRoom = errors.New("no room for another model version (--max-serving-models)")

// Set holds up to Capacity built versions.
type Set[T any] struct {
	build    func(ctx context.Context, version string) (T, error)
	capacity int
	// RetryAfter is how long a failed build is remembered; default
	// DefaultRetryAfter. Set it before the first Get.
	RetryAfter time.Duration
	// Now is the clock of RetryAfter; default time.Now.
	Now func() time.Time

	mu      sync.Mutex
	clock   uint64 // ticks on every Get: the recency order
	entries map[string]*entry[T]
}

type entry[T any] struct {
	ready    chan struct{} // closed when the build is done
	val      T
	err      error
	failedAt time.Time // when err was set
	used     uint64
}

// DefaultRetryAfter is the default Set.RetryAfter.
const DefaultRetryAfter = 10 * time.Second

// New returns a set holding up to capacity versions, each made by build
// (which must honour ctx).
func New[T any](capacity int, build func(ctx context.Context, version string) (T, error)) *Set[T] {
	return &Set[T]{build: build, capacity: max(capacity, 0), entries: map[string]*entry[T]{},
		RetryAfter: DefaultRetryAfter, Now: time.Now}
}

// Get returns the version, building it when the set does not hold it. A
// failed build is remembered for RetryAfter (every request in that time
// gets its error at once, so a version that cannot be loaded does not cost
// a registry read per request); the first Get after that tries again.
func (s *Set[T]) Get(ctx context.Context, version string) (T, error) {
	var zero T
	if s.capacity == 0 {
		return zero, ErrNoRoom
	}
	s.mu.Lock()
	s.clock++
	e, ok := s.entries[version]
	if ok && e.err != nil && s.Now().Sub(e.failedAt) >= s.RetryAfter {
		delete(s.entries, version)
		ok = false
	}
	if ok {
		e.used = s.clock
		s.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return zero, ctx.Err()
		}
		if e.err != nil {
			return zero, e.err
		}
		return e.val, nil
	}
	e = &entry[T]{ready: make(chan struct{}), used: s.clock}
	s.entries[version] = e
	s.evictLocked()
	s.mu.Unlock()

	val, err := s.build(ctx, version)
	s.mu.Lock()
	e.val, e.err = val, err
	if err != nil {
		e.err, e.failedAt = fmt.Errorf("model version %s: %w", version, err), s.Now()
	}
	s.mu.Unlock()
	close(e.ready)
	return e.val, e.err
}

// evictLocked drops the least recently used versions beyond the capacity.
func (s *Set[T]) evictLocked() {
	for len(s.entries) > s.capacity {
		var oldest string
		var at uint64
		for v, e := range s.entries {
			if oldest == "" || e.used < at {
				oldest, at = v, e.used
			}
		}
		delete(s.entries, oldest)
	}
}

// Versions returns the versions held (built or being built), sorted.
func (s *Set[T]) Versions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.entries))
	for v := range s.entries {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// Capacity is the most versions the set holds.
func (s *Set[T]) Capacity() int { return s.capacity }
