package modelset_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/modelset"
)

type builds struct {
	mu   sync.Mutex
	n    map[string]int
	fail map[string]bool
	gate chan struct{} // when set, builds wait for it
}

func (b *builds) build(ctx context.Context, v string) (string, error) {
	if b.gate != nil {
		<-b.gate
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n[v]++
	if b.fail[v] {
		return "", errors.New("no such version")
	}
	return "engine of " + v, nil
}

func TestLeastRecentlyUsedIsEvicted(t *testing.T) {
	ctx := context.Background()
	b := &builds{n: map[string]int{}}
	s := modelset.New(2, b.build)
	get := func(v string) {
		t.Helper()
		got, err := s.Get(ctx, v)
		if err != nil || got != "engine of "+v {
			t.Fatalf("Get(%s) = %q, %v", v, got, err)
		}
	}
	get("v1")
	get("v2")
	get("v1") // v2 is now the least recently used
	get("v3") // evicts v2
	if got, want := s.Versions(), []string{"v1", "v3"}; !slices.Equal(got, want) {
		t.Errorf("held %v, want %v", got, want)
	}
	get("v2") // built again; evicts v1
	if want := map[string]int{"v1": 1, "v2": 2, "v3": 1}; !mapsEqual(b.n, want) {
		t.Errorf("builds %v, want %v", b.n, want)
	}
	if got, want := s.Versions(), []string{"v2", "v3"}; !slices.Equal(got, want) {
		t.Errorf("held %v, want %v", got, want)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Concurrent requests for a version being built wait for that one build.
func TestConcurrentGetsBuildOnce(t *testing.T) {
	b := &builds{n: map[string]int{}, gate: make(chan struct{})}
	s := modelset.New(3, b.build)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			if _, err := s.Get(context.Background(), "v1"); err != nil {
				errs <- err
			}
		})
	}
	close(b.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if b.n["v1"] != 1 {
		t.Errorf("%d builds, want 1", b.n["v1"])
	}
}

func TestFailedBuildIsRetriedAndZeroCapacity(t *testing.T) {
	ctx := context.Background()
	b := &builds{n: map[string]int{}, fail: map[string]bool{"gone": true}}
	s := modelset.New(2, b.build)
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	s.Now = func() time.Time { return now }
	for _, step := range []time.Duration{0, time.Second, modelset.DefaultRetryAfter} {
		now = now.Add(step)
		if _, err := s.Get(ctx, "gone"); err == nil {
			t.Error("a failed build answered")
		}
	}
	if b.n["gone"] != 2 { // the second Get got the remembered error
		t.Errorf("builds %d, want 2", b.n["gone"])
	}
	if _, err := modelset.New(0, b.build).Get(ctx, "v1"); !errors.Is(err, modelset.ErrNoRoom) {
		t.Errorf("capacity 0: %v, want ErrNoRoom", err)
	}
}
