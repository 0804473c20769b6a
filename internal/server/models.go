package server

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/durationpb"
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
	// switchWait bounds ActivateModel's wait for this replica to serve
	// the version; poll is the replicas' registry polling interval.
	switchWait, poll time.Duration
}

// DefaultModelSwitchWait is the default Config.ModelSwitchWait.
const DefaultModelSwitchWait = 10 * time.Second

// switchCheck is how often ActivateModel looks whether the replica serves
// the version (a pointer load).
const switchCheck = 10 * time.Millisecond

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
	if err := s.waitServing(ctx, v.Info.Version); err != nil {
		return nil, err
	}
	info := toProtoModel(v.Info)
	info.Current = true
	how := "the other replicas switch when the registry announces the version (as soon as each has loaded it), " +
		"or at their next registry poll (every " + s.poll.String() + ") if they missed the announcement"
	if _, push := s.registry.(registry.Notifier); !push {
		how = "the other replicas switch at their next registry poll (every " + s.poll.String() + "), as soon as each has loaded the version"
	}
	return &recsysv1.ActivateModelResponse{Model: info, Convergence: how, PollInterval: durationpb.New(s.poll)}, nil
}

// waitServing returns once this replica serves version, or
// FailedPrecondition after switchWait (or just before the caller's
// deadline, so the caller hears why).
func (s *modelService) waitServing(ctx context.Context, version string) error {
	serves := func() bool {
		m := s.serving.Model()
		return m != nil && m.Version() == version
	}
	if serves() {
		return nil
	}
	deadline := time.Now().Add(s.switchWait)
	if d, ok := ctx.Deadline(); ok && d.Add(-100*time.Millisecond).Before(deadline) {
		deadline = d.Add(-100 * time.Millisecond)
	}
	t := time.NewTicker(switchCheck)
	defer t.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if serves() {
			return nil
		}
	}
	now := "no model"
	if m := s.serving.Model(); m != nil {
		now = m.Version()
	}
	return PreconditionError(fmt.Errorf("version %s is current in the registry, but this replica still serves %s after %v "+
		"(it keeps trying at every registry poll; its log says why it could not load the version)", version, now, s.switchWait))
}

// ModelReports reads the HTML reports stored with versions (implemented by
// *registry.Redis and *registry.Dir); a ModelRegistry without it answers
// GetModelReport with FailedPrecondition.
type ModelReports interface {
	Report(ctx context.Context, version string) ([]byte, error)
}

var _ ModelReports = registry.ReportStore(nil)

// GetModelReport returns the report stored with a version (by default the
// serving one).
func (s *modelService) GetModelReport(ctx context.Context, req *recsysv1.GetModelReportRequest) (*recsysv1.GetModelReportResponse, error) {
	reports, ok := s.registry.(ModelReports)
	if !ok {
		return nil, PreconditionError(errors.New("this server's model registry keeps no reports"))
	}
	version := req.GetVersion()
	if version == "" {
		m := s.serving.Model()
		if m == nil {
			return nil, PreconditionError(errors.New("no model is serving; name a version"))
		}
		version = m.Version()
	}
	html, err := reports.Report(ctx, version)
	switch {
	case errors.Is(err, registry.ErrUnknownVersion):
		return nil, NotFoundError(fmt.Errorf("version %q: %w", version, err))
	case errors.Is(err, registry.ErrNoReport):
		return nil, NotFoundError(fmt.Errorf("version %q: %w (it was published without recsys-train's report)", version, err))
	case err != nil:
		return nil, err
	}
	if !utf8.Valid(html) {
		return nil, fmt.Errorf("report of %s is not UTF-8", version)
	}
	return &recsysv1.GetModelReportResponse{Version: version, Html: string(html)}, nil
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
