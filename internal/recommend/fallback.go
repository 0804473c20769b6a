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
	end := time.Now().Add(b.budget)
	bctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	p, err := b.p.Load(bctx, userID)
	// The clock, not bctx.Err(): go-redis puts the deadline on the socket,
	// whose timeout can return before the context's timer has fired, and
	// that load was still cut by the budget.
	if err != nil && !time.Now().Before(end) && ctx.Err() == nil {
		return p, fmt.Errorf("%w (%v): %w", ErrProfileBudget, b.budget, err)
	}
	return p, err
}

// Fallback answers req from what the process holds, without the profile
// store: the serving model, the cached popular (or trending) list, the
// catalog and the shop rules. It is for a store that is down or slow: the
// answer is not personalized (the user's history and purchases are unknown,
// so purchased items are not excluded), but it applies req.Exclude and
// req.Filter with every hard rule. With a context item the model knows, the
// answer is that item's nearest items (SourceSimilar), which is what the
// page is about; else popular items, or trending ones for the trending
// placement.
func (e *Engine) Fallback(req Request) Result {
	m := e.model.Load()
	if req.ContextItemID != "" && m != nil {
		if _, ok := m.Index(req.ContextItemID); ok {
			res, err := e.Similar(context.Background(), SimilarRequest{
				ItemID: req.ContextItemID, Count: req.Count, Exclude: req.Exclude, Filter: req.Filter,
			})
			if err == nil {
				return res
			}
		}
	}
	res := Result{Source: SourcePopular}
	if m != nil {
		res.ModelVersion = m.Version()
	}
	var ctxItem []string
	if req.ContextItemID != "" {
		ctxItem = []string{req.ContextItemID}
	}
	s := e.itemAnswer(m, req.Filter, req.Count, req.Exclude, ctxItem)
	defer e.putScratch(s)
	fc, a := &s.filter, &s.answer
	list, reason := e.popular.List(), ReasonPopular
	if req.Placement == PlacementTrending {
		res.Source, list, reason = SourceTrending, e.trendingList(), ReasonTrending
	}
	e.fillList(fc, a, list, res.Source, reason, true, false)
	a.finish(&res, req.Count)
	return res
}
