package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/recsys-dev/recsys/internal/experiment"
	"github.com/recsys-dev/recsys/internal/redistest"
	"github.com/recsys-dev/recsys/internal/server"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// flakySync is a replica's experiment cache whose first fails Syncs fail
// (Redis blips); no poll runs, so only the server's own Syncs update it.
type flakySync struct {
	*experiment.Cache
	fails int32
	calls atomic.Int32
}

func (f *flakySync) Sync(ctx context.Context) error {
	if f.calls.Add(1) <= f.fails {
		return errors.New("redis blip")
	}
	return f.Cache.Sync(ctx)
}

// TestCreateExperimentRetriesTheSync: the replica that served a create
// answers with the experiment at once even when its first reloads fail;
// when every reload fails the create still succeeds (the experiment is
// stored; the next poll applies it) after a bounded number of retries.
func TestCreateExperimentRetriesTheSync(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fails     int32
		wantCalls int32
		wantInXP  bool
	}{
		{"first reload fails", 1, 2, true},
		{"three reloads fail", 3, 4, true},
		{"every reload fails", 1000, 4, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			rdb := redistest.Client(t)
			prefix := redistest.Prefix(t, rdb)
			var running *flakySync
			e := newEnvWith(t, envOptions{model: true, rdb: rdb, prefix: prefix, server: func(cfg *server.Config, d *server.Deps) {
				xs := experiment.NewStore(rdb, prefix, cfg.Now)
				running = &flakySync{Cache: experiment.NewCache(xs, slog.New(slog.NewTextHandler(io.Discard, nil))), fails: tt.fails}
				d.Experiments, d.Running = xs, running
			}})
			if got := e.arms(t, "home", []string{"u1"})[0]; got != "/" {
				t.Fatalf("before the create: %s, want no experiment", got)
			}
			if _, err := e.xp.CreateExperiment(ctx, &recsysv1.CreateExperimentRequest{Experiment: homeExperiment()}); err != nil {
				t.Fatal(err)
			}
			if got := running.calls.Load(); got != tt.wantCalls {
				t.Errorf("Sync called %d times, want %d", got, tt.wantCalls)
			}
			got := e.arms(t, "home", []string{"u1"})[0]
			if inXP := got != "/"; inXP != tt.wantInXP {
				t.Errorf("answer right after the create: %q, want in the experiment %v", got, tt.wantInXP)
			}
			list, err := e.xp.ListExperiments(ctx, &recsysv1.ListExperimentsRequest{})
			if err != nil || len(list.GetExperiments()) != 1 {
				t.Fatalf("list: %v, %v; want the stored experiment", list, err)
			}
		})
	}
}
