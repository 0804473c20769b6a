package daemon_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/daemon"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// TestActivateModelReturnsOnceServing rolls back through ActivateModel
// over gRPC: when the call returns, the replica that answered already
// serves the version (no waiting on the caller's side), and the answer
// says how the others converge. The poll is long, so the switch comes
// from the registry's announcement.
func TestActivateModelReturnsOnceServing(t *testing.T) {
	r := start(t, func(c *daemon.Config) { c.ModelPoll = 3 * time.Second })
	ctx := context.Background()
	v1, err := r.reg.Publish(ctx, model(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first model", func() bool { return r.servingVersion(t) == v1.Name() })
	v2, err := r.reg.Publish(ctx, model(t, 0.3))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the second model", func() bool { return r.servingVersion(t) == v2.Name() })

	res, err := r.models.ActivateModel(ctx, &recsysv1.ActivateModelRequest{Version: v1.Name()})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.servingVersion(t); got != v1.Name() {
		t.Errorf("serving %s right after ActivateModel(%s) returned", got, v1.Name())
	}
	if res.GetModel().GetVersion() != v1.Name() || !res.GetModel().GetCurrent() ||
		res.GetPollInterval().AsDuration() != 3*time.Second || !strings.Contains(res.GetConvergence(), "announces") {
		t.Errorf("answer %v: want %s current, the 3s poll and the announcement explained", res, v1.Name())
	}
}
