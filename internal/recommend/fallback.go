package recommend

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/recsys-dev/recsys/internal/profile"
)

// ErrProfileBudget marks a profile load that did not finish within its
// budget (see WithLoadBudget).
var ErrProfileBudget = errors.New("profile load over its budget")

// WithLoadBudget returns p with every Load bounded by budget, on top of the
// caller's own deadline. A load cut by the budget fails with an error
// wrapping ErrProfileBudget, so the caller can answer without the profile
// (Fallback) while it still has time, instead of waiting for a slow store
// until its own deadline.
func WithLoadBudget(p Profiles, budget time.Duration) Profiles {
	if budget <= 0 {
		return p
	}
	return budgetProfiles{p: p, budget: budget}
}

type budgetProfiles struct {
	p      Profiles
	budget time.Duration
}

func (b budgetProfiles) Load(ctx context.Context, userID string) (profile.Profile, error) {
	bctx, cancel := context.WithTimeout(ctx, b.budget)
	defer cancel()
	p, err := b.p.Load(bctx, userID)
	if err != nil && bctx.Err() != nil && ctx.Err() == nil {
		return p, fmt.Errorf("%w (%v): %w", ErrProfileBudget, b.budget, err)
	}
	return p, err
}

// Fallback answers req from what the process holds, without the profile
// store: the serving model, the cached popular list and the catalog cache.
// It is for a store that is down or slow: the answer is not personalized
// (the user's history and purchases are unknown, so purchased items are not
// excluded), but it respects req.Exclude and the catalog. With a context
// item the model knows, the answer is that item's nearest items
// (SourceSimilar), which is what the page is about; else popular items.
func (e *Engine) Fallback(req Request) Result {
	m := e.model.Load()
	n, version := 0, ""
	if m != nil {
		n, version = m.NumItems(), m.Version()
	}
	s := e.getScratch(n)
	defer e.putScratch(s)
	for _, id := range req.Exclude {
		s.exclude[id] = struct{}{}
	}
	if req.ContextItemID != "" {
		s.exclude[req.ContextItemID] = struct{}{}
		if m != nil {
			if row, ok := m.Index(req.ContextItemID); ok {
				m.Cosine(row, s.scores)
				items := e.top(m, s, req.Count)
				res := Result{Items: items, Source: SourceSimilar, ModelVersion: version}
				if len(items) < req.Count {
					res.Items = e.fillPopular(items, req.Count, s.exclude, false)
				}
				return res
			}
		}
	}
	return e.popularResult(req.Count, s.exclude, version)
}
