package eval

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/recsys-dev/recsys/internal/als"
	"github.com/recsys-dev/recsys/internal/content"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/topk"
	"github.com/recsys-dev/recsys/internal/traindata"
)

// Cold start: how well items the model never saw are placed by their
// attributes (package content). Events are split in time: the model and
// its content map are trained on the events before the cut-off, and the
// items whose first event comes after it are the new items. Every user who
// has training events and touched a new item after the cut-off is a test
// case; each method ranks all new items (and nothing else) for the user,
// and recall@K counts the new items the user touched among the first K
// (divided by min(K, touched)).
//
// The methods:
//   - "content": the user's trained vector · the new item's content vector;
//   - "category-popularity": new items of the categories the user has the
//     most training events in first; within a category (and for categories
//     the user never touched) the categories most popular in training
//     first; ties in a stable pseudo-random order;
//   - "category-popularity (global)": the same without the user: new items
//     of the most popular categories first.

// ColdStartOptions set up a cold-start evaluation; zero fields get
// defaults.
type ColdStartOptions struct {
	// K is the cut-off of recall@K. Default 20.
	K int
	// TestFraction is the share of events, by time, after the cut-off.
	// Default 0.2.
	TestFraction float64
	// Hyper trains the model on the events before the cut-off.
	Hyper     mf.Hyperparameters
	Weighting event.Weighting
	Content   content.Options
	Workers   int
}

// ColdStartResult is a cold-start evaluation.
type ColdStartResult struct {
	K            int       `json:"k"`
	Cutoff       time.Time `json:"cutoff"`
	TrainEvents  int       `json:"train_events"`
	TestEvents   int       `json:"test_events"`
	TrainItems   int       `json:"train_items"`
	NewItems     int       `json:"new_items"`     // new items with a description: the candidates
	Undescribed  int       `json:"undescribed"`   // new items without one, left out
	Cases        int       `json:"cases"`         // test users
	Features     int       `json:"features"`      // of the content map
	PlacedItems  int       `json:"placed_items"`  // new items the map could place
	Recall       []Method  `json:"recall"`        // per method
	TrainSeconds float64   `json:"train_seconds"` // ALS and the content map
}

// Method is one method's recall@K.
type Method struct {
	Name   string  `json:"name"`
	Recall float64 `json:"recall"`
}

// ColdStart evaluates content placement against category popularity on a
// time split of events (any order). items describes items; new items it does
// not describe are left out (neither method could place them).
func ColdStart(ctx context.Context, events []event.Event, items func(id string) (content.Item, bool), o ColdStartOptions) (*ColdStartResult, error) {
	if o.K == 0 {
		o.K = 20
	}
	if o.TestFraction == 0 {
		o.TestFraction = 0.2
	}
	if o.Weighting == (event.Weighting{}) {
		o.Weighting = event.DefaultWeighting()
	}
	if o.K < 1 || !(o.TestFraction > 0 && o.TestFraction < 1) {
		return nil, fmt.Errorf("cold start: k %d, test fraction %v", o.K, o.TestFraction)
	}
	evs := slices.Clone(events)
	slices.SortStableFunc(evs, func(a, b event.Event) int { return a.Time.Compare(b.Time) })
	cut := int(float64(len(evs)) * (1 - o.TestFraction))
	if cut <= 0 || cut >= len(evs) {
		return nil, fmt.Errorf("cold start: %d events cannot be split", len(evs))
	}
	cutoff := evs[cut].Time
	for cut > 0 && !evs[cut-1].Time.Before(cutoff) { // one instant on one side
		cut--
	}
	train, test := evs[:cut], evs[cut:]
	res := &ColdStartResult{K: o.K, Cutoff: cutoff, TrainEvents: len(train), TestEvents: len(test)}

	start := time.Now()
	col := traindata.NewCollector(o.Weighting, cutoff)
	for _, e := range train {
		if err := col.Add(e); err != nil {
			return nil, fmt.Errorf("cold start: %w", err)
		}
	}
	data := col.Data()
	m, err := data.Matrix()
	if err != nil {
		return nil, err
	}
	fit, err := als.Train(ctx, m, als.Config{Hyperparameters: o.Hyper, Workers: o.Workers})
	if err != nil {
		return nil, fmt.Errorf("cold start: train: %w", err)
	}
	model, err := fit.Model(mf.Info{Version: "cold-start"})
	if err != nil {
		return nil, err
	}
	mp, err := content.Fit(ctx, model, items, o.Content)
	if err != nil {
		return nil, fmt.Errorf("cold start: content map: %w", err)
	}
	res.TrainSeconds = time.Since(start).Seconds()
	res.TrainItems, res.Features = model.NumItems(), mp.Len()

	// Category counts of training: overall and per user.
	catOf := func(id string) string { it, _ := items(id); return it.Category }
	catPop := map[string]int{}
	userCats := map[string]map[string]int{}
	for _, e := range train {
		c := catOf(e.ItemID)
		if c == "" {
			continue
		}
		catPop[c]++
		uc := userCats[e.UserID]
		if uc == nil {
			uc = map[string]int{}
			userCats[e.UserID] = uc
		}
		uc[c]++
	}

	// The new items and what each test user touched.
	var newIDs []string
	newIndex := map[string]int{}
	undescribed := map[string]bool{}
	touched := map[string][]int{}
	users := map[string]int32{}
	for i, id := range fit.UserIDs {
		users[id] = int32(i)
	}
	for _, e := range test {
		if _, old := model.Index(e.ItemID); old || o.Weighting.Base(e) <= 0 {
			continue
		}
		j, ok := newIndex[e.ItemID]
		if !ok {
			if _, described := items(e.ItemID); !described {
				undescribed[e.ItemID] = true
				continue
			}
			j = len(newIDs)
			newIndex[e.ItemID] = j
			newIDs = append(newIDs, e.ItemID)
		}
		if _, trained := users[e.UserID]; trained && !slices.Contains(touched[e.UserID], j) {
			touched[e.UserID] = append(touched[e.UserID], j)
		}
	}
	res.NewItems, res.Undescribed, res.Cases = len(newIDs), len(undescribed), len(touched)
	if len(newIDs) == 0 || len(touched) == 0 {
		return nil, fmt.Errorf("cold start: %d new items and %d test users after %s", len(newIDs), len(touched), cutoff.Format(time.RFC3339))
	}
	f := model.Factors()
	vecs := make([]float32, len(newIDs)*f)
	placed := make([]bool, len(newIDs))
	tie := make([]float32, len(newIDs)) // a stable pseudo-random order in [0, 1)
	for j, id := range newIDs {
		it, _ := items(id)
		placed[j] = mp.Vector(it, vecs[j*f:(j+1)*f])
		if placed[j] {
			res.PlacedItems++
		}
		h := fnv.New32a()
		h.Write([]byte(id))
		tie[j] = float32(h.Sum32()%1_000_000) / 1_000_000
	}

	userIDs := make([]string, 0, len(touched))
	for u := range touched {
		userIDs = append(userIDs, u)
	}
	slices.Sort(userIDs)
	maxPop := 1
	for _, n := range catPop {
		maxPop = max(maxPop, n)
	}
	scores := make([]float32, len(newIDs))
	var h topk.Heap
	var buf []topk.Entry
	recallOf := func(u string, score func(j int) float32) float64 {
		for j := range scores {
			scores[j] = score(j)
		}
		h.Reset(o.K)
		for j, s := range scores {
			h.Push(int32(j), s)
		}
		buf = h.Sorted(buf[:0])
		hits := 0
		for _, e := range buf {
			if slices.Contains(touched[u], int(e.Row)) {
				hits++
			}
		}
		return float64(hits) / float64(min(o.K, len(touched[u])))
	}
	sums := make([]float64, 3)
	for _, u := range userIDs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		x := fit.UserFactors[int(users[u])*f : int(users[u]+1)*f]
		sums[0] += recallOf(u, func(j int) float32 {
			if !placed[j] {
				return -1e30 + tie[j]
			}
			var s float32
			for d, v := range vecs[j*f : (j+1)*f] {
				s += v * x[d]
			}
			return s
		})
		uc := userCats[u]
		sums[1] += recallOf(u, func(j int) float32 {
			c := catOf(newIDs[j])
			return float32(uc[c]) + (float32(catPop[c])+tie[j])/float32(maxPop+1)
		})
		sums[2] += recallOf(u, func(j int) float32 {
			return float32(catPop[catOf(newIDs[j])]) + tie[j]
		})
	}
	n := float64(len(userIDs))
	res.Recall = []Method{
		{Name: "content", Recall: sums[0] / n},
		{Name: "category-popularity", Recall: sums[1] / n},
		{Name: "category-popularity (global)", Recall: sums[2] / n},
	}
	slices.SortStableFunc(res.Recall, func(a, b Method) int { return cmp.Compare(b.Recall, a.Recall) })
	return res, nil
}
