package recommend

import (
	"context"
	"fmt"
	"github.com/recsys-dev/recsys/internal/blend"
	"slices"

	"github.com/recsys-dev/recsys/internal/profile"
)

// MaxRankItems is the most candidates one RankItems call may order.
const MaxRankItems = 1000

// ExplainedRanks is how many of the first ranked items get a reason.
const ExplainedRanks = 50

// UnknownOrder orders the candidates the model cannot score.
type UnknownOrder uint8

const (
	// KeepOrder keeps the caller's order.
	KeepOrder UnknownOrder = iota
	// ByPopularity puts popular items first (then the caller's order).
	ByPopularity
)

// RankRequest asks for a caller's candidate items ordered for one user.
type RankRequest struct {
	UserID string
	// ItemIDs are the candidates, distinct (the server validates that).
	ItemIDs       []string
	ContextItemID string // counts as a fresh view for this answer only
	Filter        Filter
	Unknown       UnknownOrder
	// WithoutProfile ranks as for a user without history, reading nothing
	// from the profile store (the server's degraded answer).
	WithoutProfile bool
}

// Dropped is a candidate the hard rules or the filter keep out.
type Dropped struct {
	ItemID string
	Why    Verdict
}

// RankResult is the candidates in their order for the user.
type RankResult struct {
	// Items are the admitted candidates: those the model scores, best first
	// by the score Recommend uses, then the others (Source popular) in the
	// request's Unknown order. Without a personal score for the user (cold,
	// opted out, no model) every item is in the Unknown order.
	Items        []Item
	Dropped      []Dropped
	Source       Source
	ModelVersion string
}

// Rank orders the caller's candidates for a user by the live score
// Recommend uses: the user's vector is folded in from the profile (plus the
// context item), and each candidate the model knows is scored y_i·x.
// Candidates that the hard rules (blocklist, availability, sale windows,
// member-only items) or the request's filter forbid are dropped and
// listed with the rule; the user's exclusions that Recommend applies to
// its own picks (history, purchases, impression rotation) do not apply: the
// caller chose these items. The first ExplainedRanks personalized items
// carry the profile item that contributes most, as in Recommend.
func (e *Engine) Rank(ctx context.Context, req RankRequest) (RankResult, error) {
	m := e.current()
	p := profile.Profile{UserID: req.UserID}
	if !req.WithoutProfile {
		var err error
		if p, err = e.profiles.Load(ctx, req.UserID); err != nil {
			return RankResult{}, fmt.Errorf("load profile of %q: %w", req.UserID, err)
		}
	}
	now := e.cfg.Now()
	s := e.requestScratch(m, req.Filter, now)
	defer e.putScratch(s)
	fc := &s.filter
	// What the user dismissed is dropped (Excluded, or Filtered for a
	// dismissed category); a low rating only lowers the item's score.
	excludeDismissed(fc, p, false)

	res := RankResult{Source: SourceCallerOrder, Dropped: []Dropped{}}
	if req.Unknown == ByPopularity {
		res.Source = SourcePopular
	}
	var x []float32
	var err error
	var bl *blend.Blend
	if m != nil {
		res.ModelVersion = m.Version()
		bl = e.blendFor(m)
		if !p.OptedOut {
			weights := p.ItemWeights(e.weighting(m), now)
			if x, err = e.foldIn(m, bl, s, weights, Request{ContextItemID: req.ContextItemID}); err != nil {
				return RankResult{}, fmt.Errorf("fold in user %q: %w", req.UserID, err)
			}
		}
	}
	if x != nil && bl != nil {
		bl.Prepare(&s.blend, x, s.rows)
		defer s.blend.Release()
	}
	score := func(row int32) float32 {
		if bl == nil {
			return m.Score(x, row)
		}
		return bl.Score(&s.blend, row, m.Score(x, row))
	}

	a := &s.answer
	a.reset(len(req.ItemIDs), 0)
	if x != nil {
		s.boost.plan(fc.boosts(), e.userSegment(p, now), m.NumItems())
	}
	var rest []string
	for _, id := range req.ItemIDs {
		if _, v := fc.verdict(id); v != Admitted {
			res.Dropped = append(res.Dropped, Dropped{ItemID: id, Why: v})
			continue
		}
		row, known := int32(-1), false
		if m != nil {
			row, known = m.Index(id)
		}
		if x == nil || !known {
			rest = append(rest, id)
			continue
		}
		a.items = append(a.items, Item{ItemID: id, Score: s.boost.score(row, score(row)), Source: SourcePersonalized})
		a.rows = append(a.rows, row)
	}
	sortByScore(a)
	if x != nil && len(a.items) > 0 {
		res.Source = SourcePersonalized
		full, fullRows := a.items, a.rows
		a.items, a.rows = full[:min(len(full), ExplainedRanks)], fullRows[:min(len(full), ExplainedRanks)]
		err := e.explain(m, s, a, p, req.ContextItemID, now)
		a.items, a.rows = full, fullRows
		if err != nil {
			return RankResult{}, fmt.Errorf("explain ranking for %q: %w", req.UserID, err)
		}
		s.boost.annotate(a)
	}
	res.Items = append(slices.Clone(a.items), e.orderUnknown(rest, req.Unknown)...)
	if res.Items == nil {
		res.Items = []Item{}
	}
	return res, nil
}

// sortByScore sorts an answer's items and rows together, best first; equal
// scores keep the caller's order.
func sortByScore(a *answer) {
	idx := make([]int, len(a.items))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(i, j int) int {
		si, sj := a.items[i].Score, a.items[j].Score
		switch {
		case si > sj:
			return -1
		case si < sj:
			return 1
		}
		return 0
	})
	items, rows := make([]Item, len(idx)), make([]int32, len(idx))
	for k, i := range idx {
		items[k], rows[k] = a.items[i], a.rows[i]
	}
	copy(a.items, items)
	copy(a.rows, rows)
}

// orderUnknown orders the candidates without a personal score: in the
// caller's order, or popular items first by their popularity score.
func (e *Engine) orderUnknown(ids []string, order UnknownOrder) []Item {
	out := make([]Item, len(ids))
	pop := map[string]float32{}
	if order == ByPopularity {
		for _, it := range e.popular.List() {
			pop[it.ItemID] = float32(it.Score)
		}
	}
	for i, id := range ids {
		out[i] = Item{ItemID: id, Source: SourceCallerOrder}
		if order == ByPopularity {
			out[i].Source = SourcePopular
			if s, ok := pop[id]; ok {
				out[i].Score, out[i].Reason = s, Reason{Kind: ReasonPopular}
			}
		}
	}
	if order == ByPopularity {
		slices.SortStableFunc(out, func(a, b Item) int {
			switch {
			case a.Score > b.Score:
				return -1
			case a.Score < b.Score:
				return 1
			}
			return 0
		})
	}
	return out
}
