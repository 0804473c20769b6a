package recommend

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/recsys-dev/recsys/internal/blend"
	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/itemindex"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/topk"
)

// PushProfiles loads users in blocks and enumerates them by last activity
// (implemented by *profile.Store).
type PushProfiles interface {
	LoadMany(ctx context.Context, ids []string) ([]profile.Profile, error)
	EachSeenUser(ctx context.Context, since, until time.Time, page int, fn func(ids []string) error) error
}

// ErrNoPushProfiles is returned by Push on an engine configured without
// PushProfiles.
var ErrNoPushProfiles = errors.New("batch recommendations are not configured")

// DefaultPushDedupWindow is the default Config.PushDedupWindow.
const DefaultPushDedupWindow = 7 * 24 * time.Hour

// Push's block sizes: profiles are loaded pushLoadBlock users per Redis
// round trip and scored pushScoreBlock users per matrix product (the score
// block is pushScoreBlock × items floats: 12.8 MB at 100K items).
const (
	pushLoadBlock  = 128
	pushScoreBlock = 32
)

// PushRequest asks for push picks for a list of users or a segment.
type PushRequest struct {
	UserIDs []string         // the users, answered in this order; or
	Segment *SegmentSelector // the users of a segment, most recently active first
	Count   int              // items per user
	// MinScore, when HasMinScore, is the least model score an item needs.
	MinScore    float32
	HasMinScore bool
	// DedupWindow leaves out items pushed to the user within it; 0:
	// Config.PushDedupWindow.
	DedupWindow    time.Duration
	Filter         Filter
	Exclude        []string
	MaxPerCategory int // 0: Config's default; negative: none
	// MaxPerBrand and MaxPerSeller cap an answer's items per brand and
	// per seller (hard, like the category cap); 0: Config's defaults.
	MaxPerBrand, MaxPerSeller int
	// Holdout, when set, says which users are held out of the campaign:
	// they are answered EmptyHoldout, whatever their profile.
	Holdout func(userID string) bool
	// Gate schedules the call's memory and scoring (a BatchRecommend
	// scheduler's stream); nil: no budget, Config.PushWorkers goroutines.
	Gate PushGate
}

// PushGate is what a Push call's memory and CPU are scheduled by
// (implemented by *pushsched.Stream).
type PushGate interface {
	// Reserve waits until at least lo bytes of the memory budget are
	// free, reserves up to hi of them and returns how many (or ctx's
	// error).
	Reserve(ctx context.Context, lo, hi int64) (int64, error)
	// TryReserve reserves n more bytes if they are free now.
	TryReserve(n int64) bool
	// Release returns n reserved bytes.
	Release(n int64)
	// Work runs fn on one of the push workers, waiting for a free one.
	Work(ctx context.Context, fn func() error) error
}

// noGate is the gate of a call without a scheduler: no budget, no workers
// beyond the engine's own.
type noGate struct{}

func (noGate) Reserve(_ context.Context, _, hi int64) (int64, error) { return hi, nil }
func (noGate) TryReserve(int64) bool                                 { return true }
func (noGate) Release(int64)                                         {}
func (noGate) Work(_ context.Context, fn func() error) error         { return fn() }

// SegmentSelector chooses the users of a segment.
type SegmentSelector struct {
	// Lifecycle; LifecycleUnknown: any known stage (users without
	// activity times are never selected).
	Lifecycle   profile.Lifecycle
	MinPerMonth float64 // least purchases per 30 days in the segment window
	MinSpend    float64 // least spend in the segment window
	MaxUsers    int     // stop after this many users; 0: all
}

// EmptyReason says why a push answer has no items.
type EmptyReason int

// The reasons; the numbering matches recsys.v1.PushEmptyReason.
const (
	EmptyNone             EmptyReason = iota
	EmptyNoConfidentItems             // nothing passed the rules, the dedup and the minimum score
	EmptyOptedOut                     // the user opted out of personalization
	EmptyUnknownUser                  // never seen (or forgotten)
	EmptyNoHistory                    // no profile item the model knows
	EmptyNoModel                      // no model loaded
	EmptyHoldout                      // held out of the campaign (PushRequest.Holdout)
)

// PushResult is the answer for one user.
type PushResult struct {
	UserID       string
	Items        []Item // model-scored items, best first; empty when Empty is set
	Empty        EmptyReason
	ModelVersion string
}

// errEnough stops a segment scan at MaxUsers.
var errEnough = errors.New("enough users")

// Push picks items to push for each user of req, calling emit once per
// user: in the order of req.UserIDs, or for a segment in the order of the
// activity index (most recently active first). Only personalized items are
// picked, never popular or exploration fallbacks: a user the model cannot
// personalize for, or for whom nothing passes, gets an empty answer with a
// reason. Each answer obeys what Recommend's does (hard rules, filter,
// purchased and recent-history exclusions, per-category cap) except that
// items rotated down by impressions and items over the cap are never used
// as filler; in addition it leaves out items pushed to the user within the
// dedup window and items scoring below the minimum.
//
// Users are answered in rounds (pushRound): up to pushLoadBlock profiles
// loaded in one round trip, folded in one by one and scored pushScoreBlock
// at a time with one matrix product (mf.Model.ScoresBlock), the score
// blocks on up to Config.PushWorkers goroutines, each inside req.Gate's
// Work; the round's memory is reserved from req.Gate's budget. Score
// buffers are the engine's Config.PushWorkers (pushScoreBlock × items
// each), shared by all calls, whatever the number of users and of calls.
// The model is loaded once: every answer of a call comes from the same
// snapshot. Push stops at the first error of ctx, the store or emit, and
// returns it.
func (e *Engine) Push(ctx context.Context, req PushRequest, emit func(PushResult) error) error {
	if e.cfg.PushProfiles == nil {
		return ErrNoPushProfiles
	}
	if req.DedupWindow == 0 {
		req.DedupWindow = e.cfg.PushDedupWindow
	}
	c := e.newPushCall(req)
	run := func(ids []string, keep func(profile.Profile) bool) error {
		for len(ids) > 0 {
			n, err := e.pushRound(ctx, c, ids, keep, emit)
			if err != nil {
				return err
			}
			ids = ids[n:]
		}
		return nil
	}
	if req.Segment == nil {
		return run(req.UserIDs, nil)
	}
	sel := *req.Segment
	since, until := e.activityRange(sel.Lifecycle, c.now)
	selected := 0
	keep := func(p profile.Profile) bool {
		if sel.MaxUsers > 0 && selected >= sel.MaxUsers {
			return false
		}
		seg := p.Segment(e.cfg.Segments, c.now)
		ok := seg.Lifecycle != profile.LifecycleUnknown && seg.Meets(sel.Lifecycle, sel.MinPerMonth, sel.MinSpend)
		if ok {
			selected++
		}
		return ok
	}
	err := e.cfg.PushProfiles.EachSeenUser(ctx, since, until, pushLoadBlock, func(ids []string) error {
		if err := run(ids, keep); err != nil {
			return err
		}
		if sel.MaxUsers > 0 && selected >= sel.MaxUsers {
			return errEnough
		}
		return nil
	})
	if errors.Is(err, errEnough) {
		return nil
	}
	return err
}

// activityRange bounds the last-activity times of a lifecycle stage, so a
// segment scan reads only the part of the index that can match.
func (e *Engine) activityRange(l profile.Lifecycle, now time.Time) (since, until time.Time) {
	switch l {
	case profile.LifecycleNew: // first seen recently, so last seen too
		return now.Add(-e.cfg.Segments.NewAge), time.Time{}
	case profile.LifecycleActive:
		return now.Add(-e.cfg.Segments.ActiveAge), time.Time{}
	case profile.LifecycleDormant:
		return time.Time{}, now.Add(-e.cfg.Segments.ActiveAge + time.Millisecond)
	}
	return time.Time{}, time.Time{}
}

// pushBuffers are one scoring block's buffers.
type pushBuffers struct {
	xs     []float32  // pushScoreBlock × factors user vectors
	scores []float32  // pushScoreBlock × items scores
	slots  []*scratch // one per user of the block
	users  []int      // index in the block of each scored user
	blend  blend.Scratch
	// searches and queries are the block's index searches started
	// together (startBlock).
	searches []*itemindex.Search
	queries  []itemindex.Query
	// ks and admits are the first selection page of each search
	// (searchTogether).
	ks     []int
	admits []func(int32) bool
	firsts [][]topk.Entry
}

// pushCall is what every block of one Push call shares: the request, one
// model snapshot with its row state, the shop rules and the time, so that
// every answer of the call is computed under the same state.
type pushCall struct {
	req        PushRequest
	m          *mf.Model // nil: no model
	st         *rowState
	rules      *catalog.Rules
	now        time.Time
	capN       int       // per-category cap
	dedupSince time.Time // items pushed since then are left out
	blend      *blend.Blend
	gate       PushGate
	// profileEst is the bytes a round reserves per profile before loading
	// it (adapted to what the call's rounds measured); answerEst bounds
	// one user's answer.
	profileEst, answerEst int64
	// roundUsers is the next round's most users (nextRoundUsers).
	roundUsers int
}

func (e *Engine) newPushCall(req PushRequest) *pushCall {
	c := &pushCall{req: req, m: e.model.Load(), rules: e.rules(), now: e.cfg.Now(), capN: req.MaxPerCategory}
	if c.m != nil {
		c.st = e.rowsFor(c.m)
		c.blend = e.blendFor(c.m)
	}
	if c.capN == 0 {
		c.capN = e.cfg.MaxPerCategory
	}
	c.dedupSince = c.now.Add(-req.DedupWindow)
	c.gate = req.Gate
	if c.gate == nil {
		c.gate = noGate{}
	}
	c.profileEst, c.answerEst = initialProfileBytes, answerBytes(max(req.Count, 1))
	c.roundUsers = pushScoreBlock // doubles while the reader keeps up
	return c
}

// pushAnswers answers the users of ps, in order.
func (e *Engine) pushAnswers(ctx context.Context, c *pushCall, ps []profile.Profile) ([]PushResult, error) {
	m := c.m
	version := ""
	if m != nil {
		version = m.Version()
	}
	results := make([]PushResult, len(ps))
	for i, p := range ps {
		results[i] = PushResult{UserID: p.UserID, ModelVersion: version}
		switch {
		case c.req.Holdout != nil && c.req.Holdout(p.UserID):
			results[i].Empty = EmptyHoldout
		case p.OptedOut:
			results[i].Empty = EmptyOptedOut
		case p.FirstSeen.IsZero() && len(p.History) == 0 && len(p.Purchased) == 0:
			results[i].Empty = EmptyUnknownUser
		case m == nil:
			results[i].Empty = EmptyNoModel
		}
	}
	if m != nil {
		// The score blocks are independent: they run on up to PushWorkers
		// goroutines, each with buffers from the engine's shared set (so
		// concurrent calls share PushWorkers buffers and cores).
		// With a scheduler's gate, a block runs only on one of its
		// workers (shared by every call).
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(e.cfg.PushWorkers)
		for start := 0; start < len(ps); start += pushScoreBlock {
			end := min(start+pushScoreBlock, len(ps))
			g.Go(func() error {
				return c.gate.Work(gctx, func() error {
					var b *pushBuffers
					select {
					case b = <-e.pushFree:
					case <-gctx.Done():
						return gctx.Err()
					}
					defer e.putPushBuffers(b)
					b.fit(m.NumItems(), m.Factors())
					return e.scoreBlock(c, b, ps[start:end], results[start:end])
				})
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
	}
	return results, nil
}

// scoreBlock fills the results of up to pushScoreBlock users whose Empty is
// not yet set: fold-in per user, one matrix product for the block, then the
// engine's selection and explanations per user.
func (e *Engine) scoreBlock(c *pushCall, b *pushBuffers, ps []profile.Profile, results []PushResult) error {
	m, req, bl := c.m, &c.req, c.blend
	n, f := m.NumItems(), m.Factors()
	b.users = b.users[:0]
	for i, p := range ps {
		if results[i].Empty != EmptyNone {
			continue
		}
		s := b.slots[len(b.users)] // a slot is reused when its user is not scored
		s.reset()
		fc := &s.filter
		fc.reset(c.st, e.catalog, c.rules, req.Filter, c.now)
		for _, id := range req.Exclude {
			fc.exclude(id)
		}
		weights := e.excludeForUser(s, fc, p)
		for _, pu := range p.Pushed {
			if !pu.Time.Before(c.dedupSince) {
				fc.exclude(pu.ItemID)
			}
		}
		x, err := e.foldIn(m, bl, s, weights, Request{})
		if err != nil {
			return fmt.Errorf("fold in user %q: %w", p.UserID, err)
		}
		if x == nil {
			results[i].Empty = EmptyNoHistory
			continue
		}
		copy(b.xs[len(b.users)*f:], x)
		b.users = append(b.users, i)
	}
	k := len(b.users)
	if k == 0 {
		return nil
	}
	si := e.indexFor(m)
	if si == nil {
		b.fitScores(n)
		m.ScoresBlock(b.xs[:k*f], k, b.scores)
	}
	for j, i := range b.users {
		s := b.slots[j]
		s.boost.plan(s.filter.boosts(), e.userSegment(ps[i], c.now), n)
	}
	started := si != nil && startBlock(si, b, f)
	if started && bl == nil {
		searchTogether(c, b)
	}
	for j, i := range b.users {
		s := b.slots[j]
		if si == nil {
			s.scores, s.searching = b.scores[j*n:(j+1)*n], false
			blendScores(bl, &b.blend, s.rows, b.xs[j*f:(j+1)*f], s.scores)
			s.boost.apply(s.scores)
		} else if x := b.xs[j*f : (j+1)*f]; s.boost.applies() || !(started || e.search(m, s, itemindex.Query{X: x})) {
			// A boost rule may lift any item (and the index refuses a
			// query that is not finite): every item's score, as
			// Recommend's.
			scanDot(m, s, x)
			blendScores(bl, &b.blend, s.rows, x, s.scores)
			s.boost.apply(s.scores)
		} else if bl != nil {
			// One search per user (started with the block's): the index
			// reads a fraction of the bytes a block product does, and
			// keeps no second copy of the factors (ScoresBlock's packed
			// layout). A blend ranks its candidates with the neighbour
			// and transition terms.
			searchBlend(s, bl, &b.blend, x)
		}
		a := &s.answer
		a.reset(req.Count, c.capN)
		a.capBrandsAndSellers(orDefault(req.MaxPerBrand, e.cfg.MaxPerBrand), orDefault(req.MaxPerSeller, e.cfg.MaxPerSeller))
		e.selectRows(s, &s.filter, a, true, SourcePersonalized)
		if s.blended != nil {
			b.blend.Release() // the next user's
			s.blended, s.blendScratch = nil, nil
		}
		if req.HasMinScore {
			// Items arrive best first: cut at the first one below.
			cut := len(a.items)
			for c, it := range a.items {
				if it.Score < req.MinScore {
					cut = c
					break
				}
			}
			a.items, a.rows = a.items[:cut], a.rows[:cut]
		}
		if len(a.items) == 0 {
			results[i].Empty = EmptyNoConfidentItems
			continue
		}
		if err := e.explain(m, s, a, ps[i], "", c.now); err != nil {
			return fmt.Errorf("explain answer for %q: %w", ps[i].UserID, err)
		}
		s.boost.annotate(a)
		results[i].Items = slices.Clone(a.items)
	}
	return nil
}

// startBlock starts the index searches of the block's users that no boost
// rule applies to together (itemindex.Index.StartBlock: the cells their
// first rounds scan are read once for the block) and reports whether it
// did; false (a query the index refuses) leaves every user to search
// alone.
func startBlock(si *servingIndex, b *pushBuffers, f int) bool {
	b.searches, b.queries = b.searches[:0], b.queries[:0]
	for j := range b.users {
		if s := b.slots[j]; !s.boost.applies() {
			b.searches = append(b.searches, &s.search)
			b.queries = append(b.queries, itemindex.Query{X: b.xs[j*f : (j+1)*f], Probe: si.probe})
		}
	}
	if si.ix.StartBlock(b.searches, b.queries) != nil {
		return false
	}
	for j := range b.users {
		if s := b.slots[j]; !s.boost.applies() {
			s.searching = true
		}
	}
	return true
}

// searchTogether runs the first index search of every searching user's
// selection — selectRows' first Top call: a fresh answer's page, no bound,
// the filter's admit with no category full yet — for the block's users
// together (itemindex.TopBlock: each round's cells are read once for the
// block) and leaves each answer in the user's scratch (first), where
// selectRows' first page takes it; later pages search on from there, as
// alone. Not for a blend, which ranks its own candidates.
func searchTogether(c *pushCall, b *pushBuffers) {
	b.searches, b.ks, b.admits = b.searches[:0], b.ks[:0], b.admits[:0]
	var noneFull []int32
	for j := range b.users {
		s := b.slots[j]
		if !s.searching {
			continue
		}
		a := &s.answer
		a.reset(c.req.Count, c.capN)
		b.searches = append(b.searches, &s.search)
		b.ks = append(b.ks, a.pageSize(true))
		b.admits = append(b.admits, admitter(&s.filter, &noneFull))
		b.firsts = append(b.firsts, s.first.rows)
	}
	itemindex.TopBlock(b.searches, b.ks, b.admits, b.firsts)
	w := 0
	for j := range b.users {
		if s := b.slots[j]; s.searching {
			s.first = firstPage{rows: b.firsts[w], size: b.ks[w], ok: true}
			w++
		}
	}
	clear(b.firsts) // the slots hold them
	b.firsts = b.firsts[:0]
}

// fit sizes b for a model of n items and f factors.
func (b *pushBuffers) fit(n, f int) {
	if cap(b.xs) < pushScoreBlock*f {
		b.xs = make([]float32, pushScoreBlock*f)
	}
	b.xs = b.xs[:pushScoreBlock*f]
	for len(b.slots) < pushScoreBlock {
		b.slots = append(b.slots, &scratch{})
	}
}

// fitScores sizes b's score block for n items (the exact scan's; a search
// of the index does not need it).
func (b *pushBuffers) fitScores(n int) {
	if cap(b.scores) < pushScoreBlock*n {
		b.scores = make([]float32, pushScoreBlock*n)
	}
	b.scores = b.scores[:pushScoreBlock*n]
}

func (e *Engine) putPushBuffers(b *pushBuffers) {
	for _, s := range b.slots {
		s.scores = nil // a view of b.scores
	}
	e.pushFree <- b
}
