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
//
// The budget bounds the caller's wait, not the load itself: the load runs
// under the caller's context without the budget's deadline (and without
// its cancellation, bounded by budgetLoadLimit instead) and, when the
// budget is over first, finishes on its own. Putting the budget's deadline
// on the load would put it on the Redis socket: go-redis closes a
// connection whose command hit a deadline, every later load then dials a
// new one under what is left of its own budget, and on a saturated CPU
// those dials time out ("dial tcp: i/o timeout") until go-redis' dial
// circuit opens and fails every new connection for a second, which answered
// thousands of Recommend calls degraded in the serving benchmark.
func WithLoadBudget(p Profiles, budget time.Duration) Profiles {
	if budget <= 0 {
		return p
	}
	return budgetProfiles{p: p, budget: budget}
}

// budgetLoadLimit bounds a load that its caller stopped waiting for (over
// the budget, or cancelled): longer than any healthy store takes, so the
// connection it holds goes back to the pool instead of being closed.
const budgetLoadLimit = 5 * time.Second

type budgetProfiles struct {
	p      Profiles
	budget time.Duration
}

type loaded struct {
	p   profile.Profile
	err error
}

func (b budgetProfiles) Load(ctx context.Context, userID string) (profile.Profile, error) {
	if err := ctx.Err(); err != nil {
		return profile.Profile{}, err
	}
	timer := time.NewTimer(b.budget)
	defer timer.Stop()
	done := make(chan loaded, 1) // buffered: an abandoned load never blocks
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), budgetLoadLimit)
	if d, ok := ctx.Deadline(); ok && time.Until(d) > budgetLoadLimit {
		lctx, cancel = context.WithDeadline(context.WithoutCancel(ctx), d)
	}
	go func() {
		defer cancel()
		p, err := b.p.Load(lctx, userID)
		done <- loaded{p, err}
	}()
	select {
	case r := <-done:
		return r.p, r.err
	case <-timer.C:
		// A load that finished at the same time is still used.
		select {
		case r := <-done:
			return r.p, r.err
		default:
		}
		return profile.Profile{}, fmt.Errorf("load profile of %q: %w (%v)", userID, ErrProfileBudget, b.budget)
	case <-ctx.Done():
		return profile.Profile{}, fmt.Errorf("load profile of %q: %w", userID, ctx.Err())
	}
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
