package recommend

import (
	"context"
	"math"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/recsys-dev/recsys/internal/catalog"
)

// mutableRules serves shop rules a test can replace.
type mutableRules struct{ p atomic.Pointer[catalog.Rules] }

func (m *mutableRules) Rules() *catalog.Rules { return m.p.Load() }

func (m *mutableRules) set(set catalog.BoostSet) {
	old := m.p.Load()
	v := int64(1)
	if old != nil {
		v = old.Version + 1
	}
	m.p.Store(&catalog.Rules{Version: v, Boosts: set})
}

func f64(v float64) *float64 { return &v }

// brandedShop is shopEngine with brands (every item i has brand b<i%7>),
// items i%5 == 0 on promotion and a rating on every third item.
func brandedShop(t *testing.T, n int) (*Engine, *mutableRules) {
	t.Helper()
	rules := &mutableRules{}
	rules.set(catalog.BoostSet{})
	eng, cat, _ := shopEngine(t, n, Config{Rules: rules})
	m := eng.Model()
	for i := range n {
		it := cat.items[m.ItemID(int32(i))]
		it.Brand = "b" + strconv.Itoa(i%7)
		it.Seller = "s" + strconv.Itoa(i%3)
		it.Promotion = i%5 == 0
		if i%3 == 0 {
			it.RatingAverage, it.RatingCount = float64(1+i%5), int64(1+i%40)
		}
		cat.set(it)
	}
	return eng, rules
}

func scoresByID(items []Item) map[string]float32 {
	out := make(map[string]float32, len(items))
	for _, it := range items {
		out[it.ItemID] = it.Score
	}
	return out
}

func TestBoostRulesAdjustEveryScoredItem(t *testing.T) {
	const n = 400
	eng, rules := brandedShop(t, n)
	ctx := context.Background()
	all := Request{UserID: "u", Count: n, MaxPerCategory: -1}
	base, err := eng.Recommend(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	before := scoresByID(base.Items)
	cat := eng.catalog

	rules.set(catalog.BoostSet{MaxAdjustment: 0.3, Rules: []catalog.BoostRule{
		{Name: "acme", Attribute: "brand", Equals: "b3", Effect: catalog.EffectAdd, Value: 0.25},
		{Name: "promo", Attribute: "promotion", Equals: "true", Effect: catalog.EffectMultiply, Value: 1.5},
		{Name: "big spenders only", Attribute: "brand", Equals: "b4", Effect: catalog.EffectAdd, Value: 1, Segment: &catalog.RuleSegment{MinSpend: 100}},
		{Name: "thrifty", Attribute: "seller", Equals: "s1", Effect: catalog.EffectAdd, Value: -0.1, Segment: &catalog.RuleSegment{MaxSpend: f64(50)}},
	}})
	got, err := eng.Recommend(ctx, all)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Items) != len(base.Items) {
		t.Fatalf("%d items with rules, %d without", len(got.Items), len(base.Items))
	}
	for i, it := range got.Items {
		c, _ := cat.Lookup(it.ItemID)
		s := before[it.ItemID]
		var add, mul float64 = 0, 1
		var names []string
		if c.Brand == "b3" {
			add += 0.25
			names = append(names, "acme")
		}
		if c.Promotion {
			mul *= 1.5
			names = append(names, "promo")
		}
		if c.Seller == "s1" { // the user spent nothing: thrifty applies, big spenders does not
			add -= 0.1
			names = append(names, "thrifty")
		}
		adj := float32(add + math.Max(float64(s), 0)*(mul-1))
		adj = max(-0.3, min(0.3, adj))
		if d := it.Score - (s + adj); d > 1e-5 || d < -1e-5 {
			t.Errorf("%s (brand %s, promotion %v): score %v, want %v + %v", it.ItemID, c.Brand, c.Promotion, it.Score, s, adj)
		}
		if adj != 0 {
			slices.Sort(names)
			gotNames := slices.Sorted(slices.Values(it.Reason.BoostRules))
			if !slices.Equal(gotNames, names) || it.Reason.BoostAdjustment != adj {
				t.Errorf("%s: reason rules %v adjustment %v, want %v %v", it.ItemID, it.Reason.BoostRules, it.Reason.BoostAdjustment, names, adj)
			}
		} else if len(it.Reason.BoostRules) != 0 {
			t.Errorf("%s: unadjusted item names rules %v", it.ItemID, it.Reason.BoostRules)
		}
		if i > 0 && it.Score > got.Items[i-1].Score {
			t.Fatalf("not sorted by the adjusted score at %d: %v after %v", i, it.Score, got.Items[i-1].Score)
		}
	}

	// A boost lifts an item from the bottom of the ranking into the top:
	// the rules apply to every scored item, not to the top K only.
	last := base.Items[len(base.Items)-1].ItemID
	lastItem, _ := cat.Lookup(last)
	rules.set(catalog.BoostSet{MaxAdjustment: 100, Rules: []catalog.BoostRule{
		{Name: "lift", Attribute: "brand", Equals: lastItem.Brand, Effect: catalog.EffectAdd, Value: 50},
	}})
	top, err := eng.Recommend(ctx, Request{UserID: "u", Count: 5, MaxPerCategory: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range top.Items {
		if c, _ := cat.Lookup(it.ItemID); c.Brand != lastItem.Brand {
			t.Errorf("top 5 hold %s of brand %s; the lifted brand %s should fill them", it.ItemID, c.Brand, lastItem.Brand)
		}
	}

	// RankItems applies the same adjustments.
	var ids []string
	for _, it := range base.Items {
		if c, _ := cat.Lookup(it.ItemID); c.Brand != lastItem.Brand && len(ids) < 2 {
			ids = append(ids, it.ItemID)
		}
	}
	ids = append(ids, last)
	ranked, err := eng.Rank(ctx, RankRequest{UserID: "u", ItemIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	if ranked.Items[0].ItemID != last || len(ranked.Items[0].Reason.BoostRules) != 1 {
		t.Errorf("RankItems with the lift: %+v, want %s first with the rule named", ranked.Items, last)
	}
}

func TestRatingRuleUsesTheSmoothedRating(t *testing.T) {
	const n = 300
	eng, rules := brandedShop(t, n)
	ctx := context.Background()
	rules.set(catalog.BoostSet{MaxAdjustment: 100, Rules: []catalog.BoostRule{
		{Name: "well rated", Attribute: "rating", Min: f64(3.5), Effect: catalog.EffectAdd, Value: 10},
	}})
	res, err := eng.Recommend(ctx, Request{UserID: "u", Count: n, MaxPerCategory: -1})
	if err != nil {
		t.Fatal(err)
	}
	var prior catalog.RatingPrior
	for i := range n {
		it, _ := eng.catalog.Lookup(eng.Model().ItemID(int32(i)))
		prior.Add(it)
	}
	lifted := 0
	for _, it := range res.Items {
		c, _ := eng.catalog.Lookup(it.ItemID)
		want := c.RatingCount > 0 && prior.Smoothed(c) >= 3.5
		if got := len(it.Reason.BoostRules) > 0; got != want {
			t.Errorf("%s (avg %v of %d, smoothed %v): lifted %v, want %v", it.ItemID, c.RatingAverage, c.RatingCount, prior.Smoothed(c), got, want)
		}
		if want {
			lifted++
		}
	}
	if lifted == 0 || lifted == len(res.Items) {
		t.Fatalf("the planted ratings lift %d of %d items; the test needs some of each", lifted, len(res.Items))
	}
}

func TestBrandAndSellerCaps(t *testing.T) {
	eng, _ := brandedShop(t, 300)
	ctx := context.Background()
	for _, tc := range []struct {
		name          string
		brand, seller int
	}{{"brand", 2, 0}, {"seller", 0, 3}, {"both", 1, 2}} {
		res, err := eng.Recommend(ctx, Request{UserID: "u", Count: 6, MaxPerCategory: -1, MaxPerBrand: tc.brand, MaxPerSeller: tc.seller})
		if err != nil {
			t.Fatal(err)
		}
		brands, sellers := map[string]int{}, map[string]int{}
		for _, it := range res.Items {
			c, _ := eng.catalog.Lookup(it.ItemID)
			brands[c.Brand]++
			sellers[c.Seller]++
		}
		for b, k := range brands {
			if tc.brand > 0 && k > tc.brand {
				t.Errorf("%s: brand %s has %d items, cap %d", tc.name, b, k, tc.brand)
			}
		}
		for s, k := range sellers {
			if tc.seller > 0 && k > tc.seller {
				t.Errorf("%s: seller %s has %d items, cap %d", tc.name, s, k, tc.seller)
			}
		}
		if len(res.Items) != 6 {
			t.Errorf("%s: %d items, want 6", tc.name, len(res.Items))
		}
	}
}

// BenchmarkBoostRules is the cost of the shop's boost rules per answer: the
// same Recommend without rules, with rules matching a seventh of the items
// (a brand), and with a rule on every item (no attribute), at 100K items.
func BenchmarkBoostRules(b *testing.B) {
	const n = 100_000
	for _, bc := range []struct {
		name  string
		rules []catalog.BoostRule
	}{
		{"none", nil},
		{"brand+promotion", []catalog.BoostRule{
			{Name: "brand", Attribute: "brand", Equals: "b3", Effect: catalog.EffectAdd, Value: 0.1},
			{Name: "promo", Attribute: "promotion", Equals: "true", Effect: catalog.EffectMultiply, Value: 1.1},
		}},
		{"every-item", []catalog.BoostRule{{Name: "all", Effect: catalog.EffectMultiply, Value: 1.01}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rules := &mutableRules{}
			rules.set(catalog.BoostSet{})
			eng, cat, _ := shopEngine(b, n, Config{Rules: rules})
			m := eng.Model()
			for i := range n {
				it := cat.items[m.ItemID(int32(i))]
				it.Brand, it.Promotion = "b"+strconv.Itoa(i%7), i%5 == 0
				cat.items[it.ID] = it
			}
			cat.version++
			rules.set(catalog.BoostSet{Rules: bc.rules})
			ctx := context.Background()
			req := Request{UserID: "u", Count: 20}
			b.ReportAllocs()
			for b.Loop() {
				if res, err := eng.Recommend(ctx, req); err != nil || len(res.Items) != 20 {
					b.Fatal(err, len(res.Items))
				}
			}
		})
	}
}
