package retrain

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/recsys-dev/recsys/internal/blend"
	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/traindata"
)

// blendName is the report's name of MF with the blend.
const blendName = "als+blend"

// BlendCandidate is MF with the order-aware blend (package blend: item
// neighbours, next-item transitions, recency-weighted fold-in). Its first
// Fit chooses the weights on a validation split carved from the events it
// is given (eval.FitBlend: each user's last training event); later fits
// (the refit on every event) reuse them, unless the job re-chose them after
// its gate (reweigh). Use one per job run.
type BlendCandidate struct {
	params *blend.Params
	// grid is the validation grid params came from; folds, after reweigh,
	// the grids it pooled.
	grid  *eval.BlendSearch
	folds []*eval.BlendSearch
}

var _ Candidate = (*BlendCandidate)(nil)

// Name is "als+blend".
func (*BlendCandidate) Name() string { return blendName }

// Fit chooses the weights (first fit only), builds the lists from in.Data
// and returns MF with the blend.
func (c *BlendCandidate) Fit(ctx context.Context, in FitInput) (Fitted, error) {
	if c.params == nil {
		m, err := in.Data.Matrix()
		if err != nil {
			return nil, err
		}
		search, err := eval.FitBlend(ctx, &traindata.Split{Name: "blend fit", Train: in.Data, Matrix: m}, in.MF.Info().Hyper,
			eval.BlendOptions{Workers: in.Workers})
		if err != nil {
			return nil, fmt.Errorf("fit the blend: %w", err)
		}
		c.choose(search, in.Logger)
	}
	b, err := eval.BuildBlendFrom(ctx, in.Data, in.MF, *c.params, blend.BuildOptions{Workers: in.Workers})
	if err != nil {
		return nil, fmt.Errorf("build the blend: %w", err)
	}
	m, err := in.MF.WithSections(b.Sections()...)
	if err != nil {
		return nil, fmt.Errorf("build the blend: %w", err)
	}
	return blendFitted{eval.NewBlend(blendName, in.MF, b, eval.Sequences(in.Data)), m}, nil
}

// choose takes the weights of search's best point.
func (c *BlendCandidate) choose(search *eval.BlendSearch, log *slog.Logger) {
	best := search.Best(true, true, true)
	p := best.Params
	c.params, c.grid = &p, search
	if log != nil {
		log.Info("blend weights chosen on validation", "neighbors", p.Neighbor, "transitions", p.Transition,
			"recency", p.Recency, "validation_users", search.Users, fmt.Sprintf("ndcg@%d", search.K), best.NDCG,
			fmt.Sprintf("hr@%d", search.K), best.HR)
	}
}

// reweigh re-chooses the weights for the refit on every event, after the
// gate has judged the candidate with the weights chosen before: the grid
// they came from (validation on each user's second-to-last event) pooled
// with the same grid on the holdout (split, each user's last event, with
// model trained on split's training part). Weights chosen two events back
// from what the refit model will predict followed noise (MovieLens 100K:
// 2.6 % below the weights fitted one event back); pooled, they are chosen
// on both positions and twice the users. Nothing happens before a first
// Fit (no grid) or on a second reweigh.
func (c *BlendCandidate) reweigh(ctx context.Context, split *traindata.Split, model *mf.Model, seed uint64, workers int, log *slog.Logger) error {
	if c.grid == nil || c.folds != nil {
		return nil
	}
	bv, err := eval.NewBlendValidator(ctx, split, eval.BlendOptions{K: c.grid.K, Seed: seed, Workers: workers})
	if err != nil {
		return fmt.Errorf("blend weights on the holdout: %w", err)
	}
	holdout, err := bv.Search(ctx, model)
	if err != nil {
		return fmt.Errorf("blend weights on the holdout: %w", err)
	}
	folds := []*eval.BlendSearch{c.grid, holdout}
	pooled, err := eval.PoolBlendSearches(folds...)
	if err != nil {
		return err
	}
	if log != nil {
		log.Info("blend weights re-chosen for the refit on two validation folds", "second_to_last_event_users", c.grid.Users,
			"last_event_users", holdout.Users)
	}
	c.choose(pooled, log)
	c.folds = folds
	return nil
}

type blendFitted struct {
	*eval.Blend
	m *mf.Model
}

func (f blendFitted) Model() *mf.Model { return f.m }

// neighborsName is the report's name of the pure item-neighbour model.
const neighborsName = "itemneighbors"

// NeighborCandidate is a pure item-neighbour model: each item scores the
// sum of its cosine similarities (package blend's neighbour lists) to the
// user's 64 newest items, served through the blend's sections with the
// weights blend.NeighborsOnly, so MF only orders items no neighbour list
// reaches and breaks ties. It lets the gate publish a personal model
// where item neighbours beat MF, instead of refusing.
type NeighborCandidate struct{}

var _ Candidate = NeighborCandidate{}

// Name is "itemneighbors".
func (NeighborCandidate) Name() string { return neighborsName }

// Fit builds the neighbour lists from in.Data over the shared MF model.
func (NeighborCandidate) Fit(ctx context.Context, in FitInput) (Fitted, error) {
	b, err := eval.BuildBlendFrom(ctx, in.Data, in.MF, blend.NeighborsOnly(), blend.BuildOptions{Workers: in.Workers})
	if err != nil {
		return nil, fmt.Errorf("build the item neighbours: %w", err)
	}
	m, err := in.MF.WithSections(b.Sections()...)
	if err != nil {
		return nil, fmt.Errorf("build the item neighbours: %w", err)
	}
	return blendFitted{eval.NewBlend(neighborsName, in.MF, b, eval.Sequences(in.Data)), m}, nil
}
