package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/registry"
	"github.com/recsys-dev/recsys/internal/server"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// stuckRegistry activates any version in the registry, but nothing ever
// loads it: the replica keeps serving what it served.
type stuckRegistry struct{}

func (stuckRegistry) List(context.Context) ([]registry.Version, error) { return nil, nil }
func (stuckRegistry) Activate(_ context.Context, v string) (registry.Version, error) {
	return registry.Version{Info: mf.Info{Version: v}, Current: true}, nil
}

// ActivateModel of a version this replica cannot switch to answers
// FailedPrecondition after its wait, naming both versions; one it already
// serves answers at once.
func TestActivateModelWaitsForThisReplica(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, envOptions{model: true, server: func(c *server.Config, d *server.Deps) {
		d.Models = stuckRegistry{}
		c.ModelSwitchWait = 100 * time.Millisecond
		c.ModelPoll = 7 * time.Second
	}})
	ctx := context.Background()
	_, err := e.models.ActivateModel(ctx, &recsysv1.ActivateModelRequest{Version: "v2"})
	if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "v2") || !strings.Contains(st.Message(), "serves v1") {
		t.Errorf("switch that never happens: got %v, want FailedPrecondition naming v2 and v1", err)
	}
	res, err := e.models.ActivateModel(ctx, &recsysv1.ActivateModelRequest{Version: "v1"})
	if err != nil {
		t.Fatalf("the version it serves: %v", err)
	}
	if res.GetModel().GetVersion() != "v1" || res.GetPollInterval().AsDuration() != 7*time.Second || !strings.Contains(res.GetConvergence(), "7s") {
		t.Errorf("got %v, want v1 with the replicas' poll interval 7s", res)
	}
}
