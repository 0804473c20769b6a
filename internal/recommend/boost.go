package recommend

import (
	"math"
	"slices"
	"time"

	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/profile"
)

// The shop's boost and bury rules (catalog.BoostSet) change the score of
// every scored item they match, before selection, so a boosted item can
// enter an answer from anywhere in the ranking (not only from the top K):
//
//	adjustment = Σ add + max(score, 0) · (Π multiply − 1), clamped to ±MaxAdjustment
//
// over the rules that match the item and apply to the user (a rule with a
// segment applies only to users of that segment, and never to answers
// without a user). Which rows each rule matches is worked out once per
// model, catalog and rules version, in the row state (buildBoosts); a
// request only decides which rules apply to its user and walks the matched
// rows, so an answer costs O(matched rows), not O(rules × items).

// rowBoosts is the per-row form of the boost rules.
type rowBoosts struct {
	set     catalog.BoostSet
	global  []uint16 // rules that match every item (no attribute)
	rows    []int32  // rows matched by at least one attribute rule, ascending
	start   []int32  // rules of rows[k]: idx[start[k]:start[k+1]]
	idx     []uint16
	segment []bool // rule i has a segment
}

// buildBoosts matches every rule against every row; nil when there are no
// rules.
func buildBoosts(st *rowState, rules *catalog.Rules, lookup func(int32) (catalog.Item, bool)) *rowBoosts {
	if rules == nil || len(rules.Boosts.Rules) == 0 {
		return nil
	}
	set := rules.Boosts
	b := &rowBoosts{set: set, segment: make([]bool, len(set.Rules))}
	// Group the attribute rules: string rules by (attribute, value), number
	// rules by attribute.
	type key struct{ attr, value string }
	byValue := map[key][]uint16{}
	byNumber := map[string][]uint16{}
	var stringAttrs []string
	for i, r := range set.Rules {
		b.segment[i] = r.Segment != nil
		switch {
		case r.Attribute == "":
			b.global = append(b.global, uint16(i))
		case r.Min != nil || r.Max != nil:
			byNumber[r.Attribute] = append(byNumber[r.Attribute], uint16(i))
		default:
			k := key{r.Attribute, r.Equals}
			if !slices.Contains(stringAttrs, r.Attribute) {
				stringAttrs = append(stringAttrs, r.Attribute)
			}
			byValue[k] = append(byValue[k], uint16(i))
		}
	}
	var prior catalog.RatingPrior
	n := len(st.flags)
	if byNumber[catalog.AttrRating] != nil {
		for r := range int32(n) {
			if it, ok := lookup(r); ok {
				prior.Add(it)
			}
		}
	}
	b.start = append(b.start, 0)
	for r := range int32(n) {
		it, ok := lookup(r)
		if !ok {
			continue
		}
		before := len(b.idx)
		rating := prior.Smoothed(it)
		for _, attr := range stringAttrs {
			if v, _, isNum, has := it.Attr(attr, rating); has && !isNum {
				b.idx = append(b.idx, byValue[key{attr, v}]...)
			}
		}
		for attr, rs := range byNumber {
			_, v, isNum, has := it.Attr(attr, rating)
			if !has || !isNum {
				continue
			}
			for _, ri := range rs {
				rule := &set.Rules[ri]
				if (rule.Min == nil || v >= *rule.Min) && (rule.Max == nil || v <= *rule.Max) {
					b.idx = append(b.idx, ri)
				}
			}
		}
		if len(b.idx) > before {
			b.rows = append(b.rows, r)
			b.start = append(b.start, int32(len(b.idx)))
		}
	}
	return b
}

// boostPlan is one request's view of the rules: which apply to its user.
type boostPlan struct {
	b        *rowBoosts
	active   []bool
	any      bool      // some rule applies
	anyGlob  bool      // some global rule applies
	adj      []float32 // adjustment per row, valid for the rows touched
	touched  []int32   // rows whose adj is set (nil with anyGlob: all rows)
	allRows  bool
	maxAdj   float32
	numItems int
}

// plan prepares p for a request; seg gives the user's segment (nil: no
// user) and is called only when some rule has a segment.
func (p *boostPlan) plan(b *rowBoosts, seg func() *profile.Segment, n int) {
	p.clearAdj()
	p.b, p.any, p.anyGlob, p.numItems = b, false, false, n
	if b == nil {
		return
	}
	if cap(p.active) < len(b.set.Rules) {
		p.active = make([]bool, len(b.set.Rules))
	}
	p.active = p.active[:len(b.set.Rules)]
	var user *profile.Segment
	userKnown := false
	for i := range b.set.Rules {
		if b.segment[i] && !userKnown && seg != nil {
			user, userKnown = seg(), true
		}
		p.active[i] = !b.segment[i] || (user != nil && inSegment(b.set.Rules[i].Segment, *user))
		p.any = p.any || p.active[i]
	}
	for _, ri := range b.global {
		p.anyGlob = p.anyGlob || p.active[ri]
	}
	p.maxAdj = float32(b.set.MaxAdjustment)
	if p.maxAdj == 0 {
		p.maxAdj = catalog.DefaultMaxAdjustment
	}
	if p.any && cap(p.adj) < n {
		p.adj = make([]float32, n)
	}
	p.adj = p.adj[:min(cap(p.adj), n)]
}

// active reports whether some rule applies to this request, so every
// item must be scored (the index's candidates would miss lifted items).
func (p *boostPlan) applies() bool { return p.b != nil && p.any }

func (p *boostPlan) clearAdj() {
	if p.allRows {
		clear(p.adj)
	} else {
		for _, r := range p.touched {
			if int(r) < len(p.adj) {
				p.adj[r] = 0
			}
		}
	}
	p.touched, p.allRows = p.touched[:0], false
}

func inSegment(s *catalog.RuleSegment, seg profile.Segment) bool {
	return seg.Meets(profile.Lifecycle(s.Lifecycle), s.MinPerMonth, s.MinSpend) && (s.MaxSpend == nil || seg.Spend <= *s.MaxSpend)
}

// adjustment is the total effect of the active rules ris (and the active
// global rules) on score.
func (p *boostPlan) adjustment(score float32, ris []uint16) float32 {
	add, mul := 0.0, 1.0
	apply := func(ri uint16) {
		if !p.active[ri] {
			return
		}
		r := &p.b.set.Rules[ri]
		if r.Effect == catalog.EffectMultiply {
			mul *= r.Value
		} else {
			add += r.Value
		}
	}
	for _, ri := range p.b.global {
		apply(ri)
	}
	for _, ri := range ris {
		apply(ri)
	}
	adj := float32(add + math.Max(float64(score), 0)*(mul-1))
	return max(-p.maxAdj, min(p.maxAdj, adj))
}

// rulesOf returns the attribute rules matching row r (binary search).
func (p *boostPlan) rulesOf(r int32) []uint16 {
	rows := p.b.rows
	lo, hi := 0, len(rows)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if rows[mid] < r {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(rows) && rows[lo] == r {
		return p.b.idx[p.b.start[lo]:p.b.start[lo+1]]
	}
	return nil
}

// apply adjusts every row's score in scores (one score per model row).
func (p *boostPlan) apply(scores []float32) {
	if p.b == nil || !p.any {
		return
	}
	if p.anyGlob {
		p.allRows = true
		k := 0
		for r := range scores {
			var ris []uint16
			if k < len(p.b.rows) && p.b.rows[k] == int32(r) {
				ris = p.b.idx[p.b.start[k]:p.b.start[k+1]]
				k++
			}
			a := p.adjustment(scores[r], ris)
			p.adj[r] = a
			scores[r] += a
		}
		return
	}
	for k, r := range p.b.rows {
		a := p.adjustment(scores[r], p.b.idx[p.b.start[k]:p.b.start[k+1]])
		if a != 0 {
			p.adj[r] = a
			p.touched = append(p.touched, r)
			scores[r] += a
		}
	}
}

// score adjusts one row's score (RankItems) and records it for reasons.
func (p *boostPlan) score(r int32, score float32) float32 {
	if p.b == nil || !p.any {
		return score
	}
	a := p.adjustment(score, p.rulesOf(r))
	if a != 0 {
		p.adj[r] = a
		p.touched = append(p.touched, r)
	}
	return score + a
}

// maxBoostReasons bounds the rule names of one reason.
const maxBoostReasons = 8

// annotate adds the fired rules and the adjustment to the reasons of the
// answer's model-scored items.
func (p *boostPlan) annotate(a *answer) {
	if p.b == nil || !p.any {
		return
	}
	for i := range a.items {
		r := a.rows[i]
		if r < 0 || int(r) >= len(p.adj) || p.adj[r] == 0 || a.items[i].Source == SourceExploration {
			continue
		}
		reason := &a.items[i].Reason
		reason.BoostAdjustment = p.adj[r]
		fired := make([]uint16, 0, 4)
		for _, list := range [][]uint16{p.b.global, p.rulesOf(r)} {
			for _, ri := range list {
				if p.active[ri] {
					fired = append(fired, ri)
				}
			}
		}
		slices.Sort(fired) // in the order the shop listed them
		reason.BoostRules = make([]string, 0, min(len(fired), maxBoostReasons))
		for _, ri := range fired[:min(len(fired), maxBoostReasons)] {
			reason.BoostRules = append(reason.BoostRules, p.b.set.Rules[ri].Name)
		}
	}
}

// userSegment returns the segment boost rules test a user against,
// computed when asked (only rules with a segment ask).
func (e *Engine) userSegment(p profile.Profile, now time.Time) func() *profile.Segment {
	return func() *profile.Segment {
		seg := p.Segment(e.cfg.Segments, now)
		return &seg
	}
}
