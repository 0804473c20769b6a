package retrain

import (
	"context"
	"fmt"

	"github.com/recsys-dev/recsys/internal/blend"
	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/mf"
)

// blendName is the report's name of MF with the blend.
const blendName = "als+blend"

// fitBlend chooses the blend weights (neighbours, transitions, recency) on
// a validation split of split's training events and evaluates MF with the
// blend on the holdout, next to the other rows of the report.
func (c *Config) fitBlend(ctx context.Context, split *eval.Split, holdout *mf.Model, opts eval.Options) (blend.Params, eval.ModelResult, error) {
	search, err := eval.FitBlend(ctx, split, c.Hyper, eval.BlendOptions{Workers: c.Workers})
	if err != nil {
		return blend.Params{}, eval.ModelResult{}, fmt.Errorf("fit the blend: %w", err)
	}
	best := search.Best(true, true, true)
	p := best.Params
	c.Logger.Info("blend weights chosen on validation", "neighbors", p.Neighbor, "transitions", p.Transition,
		"recency", p.Recency, "validation_users", search.Users, fmt.Sprintf("ndcg@%d", search.K), best.NDCG)
	b, err := eval.BuildBlend(ctx, split, holdout, p, blend.BuildOptions{Workers: c.Workers})
	if err != nil {
		return blend.Params{}, eval.ModelResult{}, fmt.Errorf("build the blend: %w", err)
	}
	res, err := eval.Evaluate(ctx, split, eval.NewBlend(blendName, holdout, b, eval.Sequences(split.Train)), opts)
	if err != nil {
		return blend.Params{}, eval.ModelResult{}, fmt.Errorf("evaluate the blend: %w", err)
	}
	return p, res, nil
}

// withBlend adds the blend sections, with lists built from all of d's
// events, to m (trained on d.Matrix()).
func (c *Config) withBlend(ctx context.Context, d *eval.Data, m *mf.Model, p blend.Params) (*mf.Model, error) {
	b, err := eval.BuildBlendFrom(ctx, d, m, p, blend.BuildOptions{Workers: c.Workers})
	if err != nil {
		return nil, fmt.Errorf("build the blend: %w", err)
	}
	return m.WithSections(b.Sections()...)
}
