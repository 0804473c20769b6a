package recommend

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/profile"
)

// heldProfiles answers a Load when release is closed, and reports the
// context the load ran under when it ends.
type heldProfiles struct {
	release chan struct{}
	ended   chan error // the load's context error when it returned
	started chan context.Context
}

func (h heldProfiles) Load(ctx context.Context, userID string) (profile.Profile, error) {
	h.started <- ctx
	select {
	case <-h.release:
		h.ended <- ctx.Err()
		return profile.Profile{UserID: userID}, nil
	case <-ctx.Done():
		h.ended <- ctx.Err()
		return profile.Profile{}, ctx.Err()
	}
}

func newHeld() heldProfiles {
	return heldProfiles{release: make(chan struct{}), ended: make(chan error, 1), started: make(chan context.Context, 1)}
}

// TestLoadBudget: a load within the budget answers; over the budget the
// caller gets ErrProfileBudget at once while the load itself keeps running
// without the budget's deadline (so a Redis connection is not cut and
// closed) and finishes normally; a caller's cancellation ends the wait but
// not the load either.
func TestLoadBudget(t *testing.T) {
	t.Run("within the budget", func(t *testing.T) {
		h := newHeld()
		close(h.release)
		got, err := WithLoadBudget(h, time.Minute).Load(t.Context(), "u1")
		if err != nil || got.UserID != "u1" {
			t.Errorf("got %+v, %v; want the profile of u1", got, err)
		}
	})
	t.Run("over the budget", func(t *testing.T) {
		h := newHeld()
		_, err := WithLoadBudget(h, time.Millisecond).Load(t.Context(), "u1")
		if !errors.Is(err, ErrProfileBudget) {
			t.Fatalf("got %v, want ErrProfileBudget", err)
		}
		lctx := <-h.started
		if d, ok := lctx.Deadline(); !ok || time.Until(d) < time.Second {
			t.Errorf("the load's deadline is %v (set %v): want the budget's not on it", d, ok)
		}
		close(h.release) // the store answers after the caller gave up
		if err := <-h.ended; err != nil {
			t.Errorf("the abandoned load's context ended: %v", err)
		}
	})
	t.Run("caller cancels", func(t *testing.T) {
		h := newHeld()
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			<-h.started
			cancel()
		}()
		_, err := WithLoadBudget(h, time.Minute).Load(ctx, "u1")
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrProfileBudget) {
			t.Errorf("got %v, want the caller's cancellation", err)
		}
		close(h.release)
		if err := <-h.ended; err != nil {
			t.Errorf("the load's context ended with the caller's: %v", err)
		}
	})
	t.Run("cancelled before", func(t *testing.T) {
		h := newHeld()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := WithLoadBudget(h, time.Minute).Load(ctx, "u1"); !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
		select {
		case <-h.started:
			t.Error("a load started for a cancelled caller")
		default:
		}
	})
}
