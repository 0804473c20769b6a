package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/internal/experiment"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/registry"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// ExperimentStore keeps the experiment definitions (implemented by
// *experiment.Store).
type ExperimentStore interface {
	Create(ctx context.Context, e experiment.Experiment) (experiment.Experiment, error)
	Update(ctx context.Context, e experiment.Experiment) (experiment.Experiment, error)
	Stop(ctx context.Context, name string) (experiment.Experiment, error)
	List(ctx context.Context) ([]experiment.Experiment, error)
	Get(ctx context.Context, name string) (experiment.Experiment, error)
}

// RunningExperiments is a replica's copy of the running experiments
// (implemented by *experiment.Cache): Recommend asks it for the
// placement's experiment on every request.
type RunningExperiments interface {
	For(placement string) (experiment.Experiment, bool)
	// Sync reloads the definitions now (after a change through this
	// replica; the others poll).
	Sync(ctx context.Context) error
}

// armFor returns the experiment and arm of a user on a placement; ok is
// false outside any experiment.
func armFor(running RunningExperiments, placement, userID string) (experiment.Experiment, experiment.Arm, bool) {
	if running == nil || placement == "" || userID == "" {
		return experiment.Experiment{}, experiment.Arm{}, false
	}
	xp, ok := running.For(placement)
	if !ok {
		return experiment.Experiment{}, experiment.Arm{}, false
	}
	arm, ok := xp.Assign(userID)
	return xp, arm, ok
}

// applyArm sets an arm's serving settings on a request; the request's own
// max_per_category wins over the arm's.
func applyArm(r *recommend.Request, arm experiment.Arm) {
	r.NonPersonalized = arm.Popular
	if arm.MaxPerCategory > 0 && r.MaxPerCategory == 0 {
		r.MaxPerCategory = arm.MaxPerCategory
	}
	r.ExploreShare = arm.ExploreShare
	switch arm.ColdSource {
	case experiment.ColdPopular:
		r.ColdSource = recommend.SourcePopular
	case experiment.ColdTrending:
		r.ColdSource = recommend.SourceTrending
	}
}

// ArmModels serves the published model versions experiment arms name,
// next to the current model (implemented in the daemon by a
// *modelset.Set of engines).
type ArmModels interface {
	Recommender(ctx context.Context, version string) (Recommender, error)
}

// ModelPinner keeps a published version from being pruned until a time
// (implemented by *registry.Redis and *registry.Dir).
type ModelPinner interface {
	Pin(ctx context.Context, version string, until time.Time) error
}

// PinLease is how long CreateExperiment and UpdateExperiment pin the
// versions their arms name; every replica renews the pins of the running
// arms well before that (RenewPins), so a stopped experiment's versions
// may be pruned at most a lease after it stopped.
const PinLease = time.Hour

// PinVersions pins the model versions of the experiments' arms for a lease
// (ModelPinner), or, for a registry that cannot pin, checks that they are
// published. The error of an unknown version is an
// *experiment.InvalidError naming the arm.
func PinVersions(ctx context.Context, models ModelRegistry, now time.Time, xps ...experiment.Experiment) error {
	if models == nil {
		return nil
	}
	var listed []registry.Version
	for _, e := range xps {
		for i, a := range e.Arms {
			if a.ModelVersion == "" {
				continue
			}
			var err error
			if p, ok := models.(ModelPinner); ok {
				err = p.Pin(ctx, a.ModelVersion, now.Add(PinLease))
			} else {
				if listed == nil {
					if listed, err = models.List(ctx); err != nil {
						return err
					}
				}
				if !slices.ContainsFunc(listed, func(v registry.Version) bool { return v.Name() == a.ModelVersion }) {
					err = registry.ErrUnknownVersion
				}
			}
			if errors.Is(err, registry.ErrUnknownVersion) {
				return &experiment.InvalidError{Field: fmt.Sprintf("arms[%d].model_version", i),
					Reason: fmt.Sprintf("%q is not a published model version (ModelService/ListModels)", a.ModelVersion)}
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

type experimentService struct {
	recsysv1.UnimplementedExperimentServiceServer
	log     *slog.Logger
	store   ExperimentStore    // nil: every RPC answers FailedPrecondition
	running RunningExperiments // may be nil
	models  ModelRegistry      // may be nil: arms' model versions are not checked or pinned
	now     func() time.Time
	// campaigns and profiles answer GetReport's campaign (nil: it answers
	// FailedPrecondition).
	campaigns CampaignUsers
	profiles  ProfileBatches
	// counters and tally answer GetReport (nil: FailedPrecondition).
	counters DailyCounters
	tally    ArmTallies
}

var errNoExperiments = PreconditionError(errors.New("this server keeps no experiments"))

// experimentError maps the experiment package's errors.
func experimentError(err error) error {
	var inv *experiment.InvalidError
	switch {
	case errors.As(err, &inv):
		return invalid("experiment."+inv.Field, inv.Reason)
	case errors.Is(err, experiment.ErrNotFound):
		return NotFoundError(err)
	case errors.Is(err, experiment.ErrConflict):
		return PreconditionError(err)
	}
	return err
}

// syncBackoff are the pauses before synced's retries: about 0.3 s in all,
// well within a change's 2-s promise and a caller's deadline.
var syncBackoff = []time.Duration{20 * time.Millisecond, 80 * time.Millisecond, 200 * time.Millisecond}

// synced refreshes this replica's copy after a change (the others poll),
// so the replica that served the change answers with it at once. The
// change is stored already, so a failure is not the caller's: synced
// retries briefly (a Redis blip), then logs and leaves the change to the
// next poll (experiment.DefaultPoll).
func (s *experimentService) synced(ctx context.Context) {
	if s.running == nil {
		return
	}
	err := s.running.Sync(ctx)
	for _, pause := range syncBackoff {
		if err == nil {
			return
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			s.log.WarnContext(ctx, "sync experiments after a change; the next poll applies it", "err", err)
			return
		case <-t.C:
		}
		err = s.running.Sync(ctx)
	}
	if err != nil {
		s.log.WarnContext(ctx, "sync experiments after a change; the next poll applies it", "err", err)
	}
}

func (s *experimentService) CreateExperiment(ctx context.Context, req *recsysv1.CreateExperimentRequest) (*recsysv1.CreateExperimentResponse, error) {
	if s.store == nil {
		return nil, errNoExperiments
	}
	e, err := fromProtoExperiment(req.GetExperiment())
	if err != nil {
		return nil, err
	}
	if err := PinVersions(ctx, s.models, s.now(), e); err != nil {
		return nil, experimentError(err)
	}
	e, err = s.store.Create(ctx, e)
	if err != nil {
		return nil, experimentError(err)
	}
	s.synced(ctx)
	return &recsysv1.CreateExperimentResponse{Experiment: toProtoExperiment(e)}, nil
}

func (s *experimentService) UpdateExperiment(ctx context.Context, req *recsysv1.UpdateExperimentRequest) (*recsysv1.UpdateExperimentResponse, error) {
	if s.store == nil {
		return nil, errNoExperiments
	}
	e, err := fromProtoExperiment(req.GetExperiment())
	if err != nil {
		return nil, err
	}
	if err := PinVersions(ctx, s.models, s.now(), e); err != nil {
		return nil, experimentError(err)
	}
	e, err = s.store.Update(ctx, e)
	if err != nil {
		return nil, experimentError(err)
	}
	s.synced(ctx)
	return &recsysv1.UpdateExperimentResponse{Experiment: toProtoExperiment(e)}, nil
}

func (s *experimentService) StopExperiment(ctx context.Context, req *recsysv1.StopExperimentRequest) (*recsysv1.StopExperimentResponse, error) {
	if s.store == nil {
		return nil, errNoExperiments
	}
	if req.GetName() == "" {
		return nil, invalid("name", "must not be empty")
	}
	e, err := s.store.Stop(ctx, req.GetName())
	if err != nil {
		return nil, experimentError(err)
	}
	s.synced(ctx)
	return &recsysv1.StopExperimentResponse{Experiment: toProtoExperiment(e)}, nil
}

func (s *experimentService) ListExperiments(ctx context.Context, _ *recsysv1.ListExperimentsRequest) (*recsysv1.ListExperimentsResponse, error) {
	if s.store == nil {
		return nil, errNoExperiments
	}
	all, err := s.store.List(ctx)
	if err != nil {
		return nil, err
	}
	out := &recsysv1.ListExperimentsResponse{Experiments: make([]*recsysv1.Experiment, len(all))}
	for i, e := range all {
		out.Experiments[i] = toProtoExperiment(e)
	}
	return out, nil
}

// fromProtoExperiment converts a request's experiment (Normalize checks
// it in the store).
func fromProtoExperiment(p *recsysv1.Experiment) (experiment.Experiment, error) {
	if p == nil {
		return experiment.Experiment{}, invalid("experiment", "is required")
	}
	e := experiment.Experiment{
		Name: p.GetName(), Placement: p.GetPlacement(), Salt: p.GetSalt(), TrafficShare: p.GetTrafficShare(),
		ControlArm: p.GetControlArm(),
	}
	for i, a := range p.GetArms() {
		arm := experiment.Arm{Name: a.GetName(), Weight: a.GetWeight(), Popular: a.GetPopular(), MaxPerCategory: int(a.GetMaxPerCategory()),
			ModelVersion: a.GetModelVersion()}
		if a.ExploreShare != nil {
			arm.ExploreShare = proto.Float64(a.GetExploreShare())
		}
		switch a.GetColdSource() {
		case recsysv1.Source_SOURCE_UNSPECIFIED:
		case recsysv1.Source_SOURCE_POPULAR:
			arm.ColdSource = experiment.ColdPopular
		case recsysv1.Source_SOURCE_TRENDING:
			arm.ColdSource = experiment.ColdTrending
		default:
			return experiment.Experiment{}, invalid("experiment.arms["+strconv.Itoa(i)+"].cold_source", "must be SOURCE_POPULAR or SOURCE_TRENDING")
		}
		e.Arms = append(e.Arms, arm)
	}
	return e, nil
}

func toProtoExperiment(e experiment.Experiment) *recsysv1.Experiment {
	out := &recsysv1.Experiment{
		Name: e.Name, Placement: e.Placement, Salt: e.Salt, TrafficShare: e.TrafficShare, ControlArm: e.ControlArm,
		State: recsysv1.ExperimentState_EXPERIMENT_STATE_RUNNING, CreatedAt: timestamppb.New(e.Created),
	}
	if !e.Running() {
		out.State, out.StoppedAt = recsysv1.ExperimentState_EXPERIMENT_STATE_STOPPED, timestamppb.New(e.Stopped)
	}
	for _, a := range e.Arms {
		pa := &recsysv1.Arm{Name: a.Name, Weight: a.Weight, Popular: a.Popular, MaxPerCategory: int32(a.MaxPerCategory), ModelVersion: a.ModelVersion}
		if a.ExploreShare != nil {
			pa.ExploreShare = proto.Float64(*a.ExploreShare)
		}
		switch a.ColdSource {
		case experiment.ColdPopular:
			pa.ColdSource = recsysv1.Source_SOURCE_POPULAR
		case experiment.ColdTrending:
			pa.ColdSource = recsysv1.Source_SOURCE_TRENDING
		}
		out.Arms = append(out.Arms, pa)
	}
	return out
}
