package recommend

import (
	"context"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/recsys-dev/recsys/internal/blend"
	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/mf"
	"github.com/recsys-dev/recsys/internal/profile"
)

// randomLists gives every item of n k random other items with weights.
func randomLists(n, k int, seed uint64) *blend.Lists {
	rng := rand.New(rand.NewPCG(seed, 1))
	l := &blend.Lists{Ptr: make([]int64, n+1)}
	for i := range n {
		seen := map[int32]bool{int32(i): true}
		for len(seen) <= k {
			if j := int32(rng.IntN(n)); !seen[j] {
				seen[j] = true
				l.Item = append(l.Item, j)
				l.Weight = append(l.Weight, rng.Float32()+0.01)
			}
		}
		l.Ptr[i+1] = int64(len(l.Item))
	}
	return l
}

// withBlend returns m carrying a blend of the given lists and weights.
func withBlend(t testing.TB, m *mf.Model, nb, tr *blend.Lists, p blend.Params) *mf.Model {
	t.Helper()
	b, err := blend.New(m, nb, tr, p)
	if err != nil {
		t.Fatal(err)
	}
	bm, err := m.WithSections(b.Sections()...)
	if err != nil {
		t.Fatal(err)
	}
	return bm.WithVersion(m.Version() + "+blend")
}

// shopProfiles answers every push user with the shop's one profile.
type shopProfiles struct{ p profile.Profile }

func (s shopProfiles) LoadMany(_ context.Context, ids []string) ([]profile.Profile, error) {
	out := make([]profile.Profile, len(ids))
	for i, id := range ids {
		out[i] = s.p
		out[i].UserID, out[i].FirstSeen = id, s.p.History[len(s.p.History)-1].Time
	}
	return out, nil
}

func (shopProfiles) EachSeenUser(context.Context, time.Time, time.Time, int, func([]string) error) error {
	return nil
}

// A blended model is served through the index: with the flat index, or the
// partitioned one probing every cell, Recommend and BatchRecommend (Push)
// answer what the exact scan of the full blend answers, items, scores and
// order, bit for bit.
func TestIndexedBlendAnswersAreTheExactBlends(t *testing.T) {
	const n = 3000
	p := blend.DefaultParams()
	p.Neighbor, p.Transition, p.Recency = 0.5, 1, 1
	exact, _, prof := shopEngine(t, n, Config{ExactScan: true})
	bm := withBlend(t, exact.Model(), randomLists(n, 30, 1), randomLists(n, 20, 2), p)
	if err := exact.SetModel(bm); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"flat", Config{}},
		{"ivf-every-cell", Config{IndexMinItems: -1, IndexProbe: 1 << 20}},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.PushProfiles = shopProfiles{prof}
			indexed, _, _ := shopEngine(t, n, c.cfg)
			if err := indexed.SetModel(bm); err != nil {
				t.Fatal(err)
			}
			if indexed.indexFor(bm) == nil || indexed.blendFor(bm) == nil {
				t.Fatal("no index or no blend")
			}
			for i, req := range indexCases() {
				req.UserID = "u"
				want, err := exact.Recommend(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				got, err := indexed.Recommend(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got.Items, want.Items) || got.Partial != want.Partial {
					t.Errorf("case %d (%+v): the indexed blend differs\n got %v\nwant %v", i, req, head(got.Items), head(want.Items))
				}
				if req.Count > 200 || req.MaxPerCategory > 0 {
					continue // Push never relaxes the cap, Recommend does
				}
				var pushed []PushResult
				err = indexed.Push(ctx, PushRequest{UserIDs: []string{"u"}, Count: req.Count, Filter: req.Filter, MaxPerCategory: -1},
					func(r PushResult) error { pushed = append(pushed, r); return nil })
				if err != nil {
					t.Fatal(err)
				}
				if len(pushed) != 1 || !reflect.DeepEqual(pushed[0].Items, want.Items) {
					t.Errorf("case %d: Push through the index differs from the exact blend\n got %v\nwant %v", i, pushed, head(want.Items))
				}
			}
		})
	}
}

// An item that only a neighbour term lifts, far from the user's vector (the
// lowest MF score of all), is a candidate however few cells are probed.
func TestNeighbourLiftedItemSurvivesAOneCellProbe(t *testing.T) {
	const n = 3000
	forced, _, _ := shopEngine(t, n, Config{IndexMinItems: -1, IndexProbe: 1})
	ctx := context.Background()
	all, err := forced.Recommend(ctx, Request{UserID: "u", Count: n, MaxPerCategory: -1})
	if err != nil {
		t.Fatal(err)
	}
	mfOnly, err := forced.Recommend(ctx, Request{UserID: "u", Count: 10})
	if err != nil {
		t.Fatal(err)
	}
	m := forced.Model()
	target, _ := m.Index(all.Items[len(all.Items)-1].ItemID) // the user's worst MF score
	// Every item's one neighbour is the target (which has none).
	l := &blend.Lists{Ptr: make([]int64, n+1)}
	for i := range n {
		if int32(i) != target {
			l.Item, l.Weight = append(l.Item, target), append(l.Weight, 1)
		}
		l.Ptr[i+1] = int64(len(l.Item))
	}
	p := blend.DefaultParams()
	p.Neighbor = 1
	if err := forced.SetModel(withBlend(t, m, l, nil, p)); err != nil {
		t.Fatal(err)
	}
	got, err := forced.Recommend(ctx, Request{UserID: "u", Count: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Items) != 10 || got.Items[0].ItemID != m.ItemID(target) {
		t.Fatalf("with the blend the first item is %v, want the neighbour-lifted %s", head(got.Items), m.ItemID(target))
	}
	// The other nine are MF's best, in MF's order.
	for i, it := range got.Items[1:] {
		if it.ItemID != mfOnly.Items[i].ItemID {
			t.Errorf("item %d: %s, MF alone %s", i+1, it.ItemID, mfOnly.Items[i].ItemID)
		}
	}
}

// BatchRecommend (Push) applies the shop's boost rules on the index path as
// Recommend does: with a blended model and the partitioned index forced, a
// rule that lifts a brand gives both the same items, scores and reasons.
func TestPushAppliesBoostsOnTheIndexPath(t *testing.T) {
	const n = 2000
	rules := &mutableRules{}
	rules.set(catalog.BoostSet{})
	eng, cat, prof := shopEngine(t, n, Config{Rules: rules, IndexMinItems: -1, IndexProbe: 1})
	eng.cfg.PushProfiles = shopProfiles{prof}
	m := eng.Model()
	for i := range n {
		it := cat.items[m.ItemID(int32(i))]
		it.Brand = "b" + strconv.Itoa(i%7)
		cat.set(it)
	}
	p := blend.DefaultParams()
	p.Neighbor, p.Transition = 0.5, 1
	if err := eng.SetModel(withBlend(t, m, randomLists(n, 30, 1), randomLists(n, 20, 2), p)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, set := range []catalog.BoostSet{{}, {MaxAdjustment: 100, Rules: []catalog.BoostRule{
		{Name: "lift", Attribute: "brand", Equals: "b5", Effect: catalog.EffectAdd, Value: 50},
	}}} {
		rules.set(set)
		want, err := eng.Recommend(ctx, Request{UserID: "u", Count: 10, MaxPerCategory: -1})
		if err != nil {
			t.Fatal(err)
		}
		var got []PushResult
		err = eng.Push(ctx, PushRequest{UserIDs: []string{"u"}, Count: 10, MaxPerCategory: -1},
			func(r PushResult) error { got = append(got, r); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !reflect.DeepEqual(got[0].Items, want.Items) {
			t.Errorf("rules %v: Push %v, Recommend %v", set.Rules, got, head(want.Items))
		}
		for _, it := range want.Items {
			if c := cat.items[it.ItemID]; len(set.Rules) > 0 && c.Brand != "b5" {
				t.Errorf("rules %v: %s of brand %s in the top 10, the lifted brand should fill it", set.Rules, it.ItemID, c.Brand)
			}
		}
	}
}
