package server

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/registry"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// ServingModel tells which model serves (implemented by *recommend.Engine).
type ServingModel interface {
	Model() *mf.Model
}

// ModelRegistry lists and activates published versions (implemented by
// *registry.Redis and *registry.Dir).
type ModelRegistry interface {
	List(ctx context.Context) ([]registry.Version, error)
	Activate(ctx context.Context, version string) (registry.Version, error)
}

type modelService struct {
	recsysv1.UnimplementedModelServiceServer
	serving  ServingModel
	registry ModelRegistry // may be nil
}

var errNoRegistry = PreconditionError(errors.New("this server has no model registry"))

func (s *modelService) ListModels(ctx context.Context, _ *recsysv1.ListModelsRequest) (*recsysv1.ListModelsResponse, error) {
	if s.registry == nil {
		return nil, errNoRegistry
	}
	vs, err := s.registry.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*recsysv1.ModelInfo, len(vs))
	for i, v := range vs {
		out[i] = toProtoModel(v.Info)
		out[i].Current = v.Current
	}
	return &recsysv1.ListModelsResponse{Models: out}, nil
}

func (s *modelService) ActivateModel(ctx context.Context, req *recsysv1.ActivateModelRequest) (*recsysv1.ActivateModelResponse, error) {
	if s.registry == nil {
		return nil, errNoRegistry
	}
	v, err := s.registry.Activate(ctx, req.GetVersion())
	if errors.Is(err, registry.ErrUnknownVersion) {
		return nil, NotFoundError(fmt.Errorf("version %q: %w", req.GetVersion(), err))
	}
	if err != nil {
		return nil, err
	}
	info := toProtoModel(v.Info)
	info.Current = true
	return &recsysv1.ActivateModelResponse{Model: info}, nil
}

func (s *modelService) GetModel(ctx context.Context, _ *recsysv1.GetModelRequest) (*recsysv1.GetModelResponse, error) {
	m := s.serving.Model()
	if m == nil {
		return &recsysv1.GetModelResponse{}, nil
	}
	info := toProtoModel(m.Info())
	info.Current = true
	return &recsysv1.GetModelResponse{Model: info}, nil
}

func toProtoModel(in mf.Info) *recsysv1.ModelInfo {
	h := in.Hyper
	out := &recsysv1.ModelInfo{
		Version: in.Version,
		Users:   in.Users,
		Items:   in.Items,
		Factors: int32(h.Factors),
		Hyperparameters: map[string]float64{
			"regularization": h.Regularization,
			"reg_exponent":   h.RegExponent,
			"alpha":          h.Alpha,
			"iterations":     float64(h.Iterations),
			"interactions":   float64(in.Interactions),
		},
		Metrics: in.Metrics,
	}
	if !in.TrainedAt.IsZero() {
		out.TrainedAt = timestamppb.New(in.TrainedAt)
	}
	return out
}
