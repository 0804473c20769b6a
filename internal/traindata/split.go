package traindata

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/recsys-dev/recsys/internal/sparse"
)

// Case is one test user: what the recommender may know about them and what
// it should find.
type Case struct {
	// User is the user's row in Split.Matrix, or -1 for a user the model
	// was not trained on (strong generalization).
	User int32
	// Known are the items the recommender is given (sorted, distinct) with
	// their aggregated strengths; they are never ranked.
	Known        []int32
	KnownWeights []float32
	// Test are the held-out items (sorted, distinct). A test item that is
	// also in Known (bought again) is never ranked, so it counts as a miss:
	// recommending what the user already has is not what is measured.
	Test []int32
}

// Split is training data plus test cases.
type Split struct {
	Name   string
	Train  *Data          // the training events, over the full id tables
	Matrix *sparse.Matrix // Train aggregated; models train on it
	Cases  []Case
}

// TimeSplit holds out each user's latest events.
type TimeSplit struct {
	// LastN holds out each user's last N events; if 0, Fraction holds out
	// the last ⌈Fraction·n⌉ of a user's n events.
	LastN    int
	Fraction float64
	// MinTrain is the number of events a user must keep for training to get
	// a test case (default 1); users with fewer stay train-only.
	MinTrain int
}

// SplitByTime orders each user's events by time (ties keep input order)
// and holds out the latest ones. The held-out items the user also has in
// training stay in the test set as misses (they are never ranked); the
// held-out events are not trained on.
func SplitByTime(d *Data, opt TimeSplit) (*Split, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("split by time: %w", err)
	}
	name := "time-holdout last " + strconv.Itoa(opt.LastN)
	switch {
	case opt.LastN < 0:
		return nil, fmt.Errorf("split by time: last_n must be >= 0, got %d", opt.LastN)
	case opt.LastN == 0 && !(opt.Fraction > 0 && opt.Fraction < 1):
		return nil, fmt.Errorf("split by time: fraction must be within (0, 1) when last_n is 0, got %v", opt.Fraction)
	case opt.LastN == 0:
		name = fmt.Sprintf("time-holdout last %g%%", opt.Fraction*100)
	}
	if opt.MinTrain < 1 {
		opt.MinTrain = 1
	}
	ptr, order := groupByUser(d)
	held := make([]bool, d.Len())
	for u := 0; u < d.Users; u++ {
		evs := order[ptr[u]:ptr[u+1]]
		n := len(evs)
		h := opt.LastN
		if h == 0 {
			h = int(math.Ceil(opt.Fraction * float64(n)))
		}
		if n-h < opt.MinTrain {
			continue
		}
		slices.SortStableFunc(evs, func(a, b int32) int { return cmp.Compare(d.Time[a], d.Time[b]) })
		for _, k := range evs[n-h:] {
			held[k] = true
		}
	}
	s, err := splitHeld(d, held, ptr, order, name)
	if err != nil {
		return nil, fmt.Errorf("split by time: %w", err)
	}
	return s, nil
}

// SplitHeld splits d by a given partition: the events for which held
// returns true are the test, the rest is trained on. It is how a pre-split
// pair of files (train, test) is evaluated: collect both into one Data so
// they share id tables, then hold out the test file's events. Test items a
// user also has in training are misses, as in SplitByTime.
func SplitHeld(d *Data, held func(k int) bool, name string) (*Split, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("split %s: %w", name, err)
	}
	h := make([]bool, d.Len())
	for k := range h {
		h[k] = held(k)
	}
	ptr, order := groupByUser(d)
	s, err := splitHeld(d, h, ptr, order, name)
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", name, err)
	}
	return s, nil
}

func splitHeld(d *Data, held []bool, ptr []int64, order []int32, name string) (*Split, error) {
	train := d.subset(func(k int) bool { return !held[k] })
	m, err := train.Matrix()
	if err != nil {
		return nil, err
	}
	s := &Split{Name: name, Train: train, Matrix: m}
	for u := 0; u < d.Users; u++ {
		var test []int32
		for _, k := range order[ptr[u]:ptr[u+1]] {
			if held[k] {
				test = append(test, d.Col[k])
			}
		}
		if len(test) == 0 {
			continue
		}
		known, w := m.Row(u)
		slices.Sort(test)
		test = slices.Compact(test)
		s.Cases = append(s.Cases, Case{User: int32(u), Known: known, KnownWeights: w, Test: test})
	}
	if len(s.Cases) == 0 {
		return nil, errors.New("no user has enough events for a test case")
	}
	return s, nil
}

// LeaveLastOut is the next-item protocol of the sequential-recommendation
// literature (SASRec, S3-Rec, ICLRec): each user's last event (by time,
// ties in input order) is the test item, the rest is trained on, and users
// with fewer than 3 events get no test case (their events are still trained
// on).
func LeaveLastOut(d *Data) (*Split, error) {
	s, err := SplitByTime(d, TimeSplit{LastN: 1, MinTrain: 2})
	if err != nil {
		return nil, fmt.Errorf("leave-last-out: %w", err)
	}
	s.Name = "leave-last-out (users with >= 3 events)"
	return s, nil
}

// UserSplit holds out whole users (strong generalization).
type UserSplit struct {
	// Users is the number of users held out; if 0, Fraction of the eligible
	// users are.
	Users    int
	Fraction float64
	// FoldIn is the share of a held-out user's distinct items given to the
	// recommender (default 0.8); the rest are the test items.
	FoldIn float64
	// MinItems is the number of distinct items a user needs to be held out
	// (default 5), so both parts are non-empty.
	MinItems int
	Seed     uint64
}

// SplitByUser trains on all events of the users not held out. For each
// held-out user, a seeded random FoldIn share of their distinct items (with
// aggregated strengths) is what the recommender knows, the rest is the test.
func SplitByUser(d *Data, opt UserSplit) (*Split, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("split by user: %w", err)
	}
	if opt.FoldIn == 0 {
		opt.FoldIn = 0.8
	}
	if opt.MinItems == 0 {
		opt.MinItems = 5
	}
	switch {
	case opt.Users < 0:
		return nil, fmt.Errorf("split by user: users must be >= 0, got %d", opt.Users)
	case opt.Users == 0 && !(opt.Fraction > 0 && opt.Fraction < 1):
		return nil, fmt.Errorf("split by user: fraction must be within (0, 1) when users is 0, got %v", opt.Fraction)
	case !(opt.FoldIn > 0 && opt.FoldIn < 1):
		return nil, fmt.Errorf("split by user: fold_in must be within (0, 1), got %v", opt.FoldIn)
	case opt.MinItems < 2:
		return nil, fmt.Errorf("split by user: min_items must be >= 2, got %d", opt.MinItems)
	}
	all, err := d.Matrix()
	if err != nil {
		return nil, fmt.Errorf("split by user: %w", err)
	}
	var eligible []int32
	for u := 0; u < all.Rows; u++ {
		if all.RowLen(u) >= opt.MinItems {
			eligible = append(eligible, int32(u))
		}
	}
	n := opt.Users
	if n == 0 {
		n = int(math.Round(opt.Fraction * float64(len(eligible))))
	}
	if n < 1 || n >= len(eligible) {
		return nil, fmt.Errorf("split by user: %d of %d eligible users (with >= %d items) to hold out; need 1..%d", n, len(eligible), opt.MinItems, len(eligible)-1)
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x5b17))
	rng.Shuffle(len(eligible), func(i, j int) { eligible[i], eligible[j] = eligible[j], eligible[i] })
	heldOut := eligible[:n]
	slices.Sort(heldOut)
	isHeld := make([]bool, d.Users)
	for _, u := range heldOut {
		isHeld[u] = true
	}
	train := d.subset(func(k int) bool { return !isHeld[d.Row[k]] })
	m, err := train.Matrix()
	if err != nil {
		return nil, fmt.Errorf("split by user: %w", err)
	}
	name := fmt.Sprintf("strong-generalization %d users, fold-in %g%%", n, opt.FoldIn*100)
	s := &Split{Name: name, Train: train, Matrix: m, Cases: make([]Case, 0, n)}
	for _, u := range heldOut {
		cols, vals := all.Row(int(u))
		perm := rng.Perm(len(cols))
		k := int(math.Round(opt.FoldIn * float64(len(cols))))
		k = min(max(k, 1), len(cols)-1)
		in, out := slices.Clone(perm[:k]), slices.Clone(perm[k:])
		slices.Sort(in)
		slices.Sort(out)
		c := Case{User: -1, Known: make([]int32, k), KnownWeights: make([]float32, k), Test: make([]int32, len(out))}
		for j, p := range in {
			c.Known[j], c.KnownWeights[j] = cols[p], vals[p]
		}
		for j, p := range out {
			c.Test[j] = cols[p]
		}
		s.Cases = append(s.Cases, c)
	}
	return s, nil
}

// groupByUser returns the event indices grouped by user (a counting sort,
// input order kept within a user): user u's events are order[ptr[u]:ptr[u+1]].
func groupByUser(d *Data) (ptr []int64, order []int32) {
	ptr = make([]int64, d.Users+1)
	for _, u := range d.Row {
		ptr[u+1]++
	}
	for u := 0; u < d.Users; u++ {
		ptr[u+1] += ptr[u]
	}
	next := slices.Clone(ptr[:d.Users])
	order = make([]int32, d.Len())
	for k, u := range d.Row {
		order[next[u]] = int32(k)
		next[u]++
	}
	return ptr, order
}
