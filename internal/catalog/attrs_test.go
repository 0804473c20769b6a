package catalog

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestDescribedItemsRoundTrip(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.DeclareAttributes(ctx, []Declaration{{"material", AttrString}, {"margin", AttrNumber}}); err != nil {
		t.Fatal(err)
	}
	items := []Item{
		{ID: "plain", Category: "shoes", Price: 3, Available: true},
		{ID: "full", Category: "shoes", Price: 59.9, Available: true, CreatedAt: created, MemberOnly: true,
			Title: "Trail runner ✓", Brand: "Acme", Seller: "acme-store", RatingAverage: 4.5, RatingCount: 120, Promotion: true,
			Attributes: []Attribute{{Name: "material", Type: AttrString, Str: "leather"}, {Name: "margin", Type: AttrNumber, Num: -0.25}}},
		{ID: "brand-only", Brand: "Zed"},
		{ID: "rated", RatingAverage: 0, RatingCount: 3},
	}
	upsert(t, s, items...)
	got, err := s.Get(ctx, []string{"plain", "full", "brand-only", "rated"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, items) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, items)
	}
	// Items without descriptive fields keep the old encoding, which older
	// servers read.
	if b := appendItem(nil, items[0]); b[0]&itemReserved != 0 {
		t.Errorf("a plain item is written in format %#x", b[0]&itemReserved)
	}
	// The cache sees them too.
	c := NewCache(s, nil)
	syncCache(t, c)
	if it, ok := c.Lookup("full"); !ok || !reflect.DeepEqual(it, items[1]) {
		t.Errorf("cache has %+v, want %+v", it, items[1])
	}
}

func TestUpsertRejectsBadAttributes(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.DeclareAttributes(ctx, []Declaration{{"material", AttrString}}); err != nil {
		t.Fatal(err)
	}
	str := func(name, v string) Attribute { return Attribute{Name: name, Type: AttrString, Str: v} }
	tests := []struct {
		name    string
		item    Item
		wantErr string
	}{
		{"undeclared", Item{ID: "x", Attributes: []Attribute{str("color", "red")}}, "undeclared attribute \"color\""},
		{"wrong type", Item{ID: "x", Attributes: []Attribute{{Name: "material", Type: AttrNumber, Num: 1}}}, "declared string"},
		{"repeated", Item{ID: "x", Attributes: []Attribute{str("material", "a"), str("material", "b")}}, "repeated"},
		{"too many", Item{ID: "x", Attributes: make([]Attribute, MaxItemAttributes+1)}, "at most 32"},
		{"no value", Item{ID: "x", Attributes: []Attribute{{Name: "material"}}}, "no value"},
		{"NaN number", Item{ID: "x", Attributes: []Attribute{{Name: "margin", Type: AttrNumber, Num: math.NaN()}}}, "finite"},
		{"rating above 5", Item{ID: "x", RatingAverage: 5.5, RatingCount: 1}, "rating_average"},
		{"negative rating count", Item{ID: "x", RatingCount: -1}, "rating_count"},
		{"long brand", Item{ID: "x", Brand: strings.Repeat("b", MaxNameBytes+1)}, "brand is 257 bytes"},
		{"bad utf-8 seller", Item{ID: "x", Seller: "\xff"}, "seller is not valid UTF-8"},
		{"long title", Item{ID: "x", Title: strings.Repeat("t", MaxTitleBytes+1)}, "title is 1025 bytes"},
	}
	for _, tc := range tests {
		err := s.Upsert(ctx, []Item{{ID: "ok"}, tc.item})
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "item 1") {
			t.Errorf("%s: got %v, want an error about item 1 containing %q", tc.name, err, tc.wantErr)
		}
	}
	if got, _ := s.Get(ctx, []string{"ok"}); len(got) != 0 {
		t.Errorf("a rejected batch wrote %+v", got)
	}
}

func TestDeclareAttributes(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	n, err := s.DeclareAttributes(ctx, []Declaration{{"material", AttrString}, {"margin", AttrNumber}})
	if err != nil || n != 2 {
		t.Fatalf("declare: %d, %v", n, err)
	}
	if n, err := s.DeclareAttributes(ctx, []Declaration{{"material", AttrString}}); err != nil || n != 2 {
		t.Errorf("declaring again with the same type: %d, %v; want a no-op", n, err)
	}
	if _, err := s.DeclareAttributes(ctx, []Declaration{{"margin", AttrString}}); !errors.Is(err, ErrUnknownAttribute) {
		t.Errorf("redeclaring with another type: %v, want ErrUnknownAttribute", err)
	}
	for _, bad := range []Declaration{{"brand", AttrString}, {"Upper", AttrString}, {"", AttrNumber}, {"ok", AttrUnspecified}} {
		if _, err := s.DeclareAttributes(ctx, []Declaration{bad}); err == nil {
			t.Errorf("declaring %+v: no error", bad)
		}
	}
	many := make([]Declaration, MaxDeclarations)
	for i := range many {
		many[i] = Declaration{Name: "a" + strings.Repeat("x", i%60) + string(rune('a'+i/60)), Type: AttrNumber}
	}
	if _, err := s.DeclareAttributes(ctx, many); !errors.Is(err, ErrRulesFull) {
		t.Errorf("declaring past %d: %v, want ErrRulesFull", MaxDeclarations, err)
	}
	c := NewRulesCache(s, nil)
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := []Declaration{{"margin", AttrNumber}, {"material", AttrString}}
	if got := c.Rules().SortedDeclarations(); !reflect.DeepEqual(got, want) {
		t.Errorf("declarations %+v, want %+v", got, want)
	}
}

func ptr(v float64) *float64 { return &v }

func TestSetBoostsValidates(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.DeclareAttributes(ctx, []Declaration{{"margin", AttrNumber}, {"material", AttrString}}); err != nil {
		t.Fatal(err)
	}
	add := func(name string) BoostRule {
		return BoostRule{Name: name, Attribute: "brand", Equals: "acme", Effect: EffectAdd, Value: 0.1}
	}
	tooMany := make([]BoostRule, MaxBoostRules+1)
	for i := range tooMany {
		tooMany[i] = add("r" + strings.Repeat("x", i%50) + string(rune('a'+i/50)))
	}
	overflow := make([]BoostRule, 40)
	for i := range overflow {
		overflow[i] = BoostRule{Name: string(rune('a' + i)), Attribute: "promotion", Equals: "true", Effect: EffectMultiply, Value: 10}
	}
	tests := []struct {
		name    string
		set     BoostSet
		wantErr string
	}{
		{"too many", BoostSet{Rules: tooMany}, "at most 1000"},
		{"duplicate name", BoostSet{Rules: []BoostRule{add("a"), add("a")}}, "rules[1].name \"a\" is used twice"},
		{"empty name", BoostSet{Rules: []BoostRule{add("")}}, "rules[0].name"},
		{"unknown attribute", BoostSet{Rules: []BoostRule{{Name: "a", Attribute: "color", Equals: "red", Effect: EffectAdd, Value: 1}}}, "rules[0].attribute \"color\""},
		{"range on a string", BoostSet{Rules: []BoostRule{{Name: "a", Attribute: "material", Min: ptr(1), Effect: EffectAdd, Value: 1}}}, "rules[0].min"},
		{"equals on a number", BoostSet{Rules: []BoostRule{{Name: "a", Attribute: "price", Equals: "3", Effect: EffectAdd, Value: 1}}}, "rules[0].equals"},
		{"number without bounds", BoostSet{Rules: []BoostRule{{Name: "a", Attribute: "rating", Effect: EffectAdd, Value: 1}}}, "needs min or max"},
		{"inverted range", BoostSet{Rules: []BoostRule{{Name: "a", Attribute: "margin", Min: ptr(2), Max: ptr(1), Effect: EffectAdd, Value: 1}}}, "above max"},
		{"promotion value", BoostSet{Rules: []BoostRule{{Name: "a", Attribute: "promotion", Equals: "yes", Effect: EffectAdd, Value: 1}}}, "\"true\" or \"false\""},
		{"no effect", BoostSet{Rules: []BoostRule{{Name: "a", Attribute: "brand", Equals: "x"}}}, "rules[0].effect"},
		{"NaN add", BoostSet{Rules: []BoostRule{{Name: "a", Attribute: "brand", Equals: "x", Effect: EffectAdd, Value: math.NaN()}}}, "rules[0].add"},
		{"huge add", BoostSet{Rules: []BoostRule{{Name: "a", Attribute: "brand", Equals: "x", Effect: EffectAdd, Value: 1001}}}, "rules[0].add"},
		{"zero multiply", BoostSet{Rules: []BoostRule{{Name: "a", Attribute: "brand", Equals: "x", Effect: EffectMultiply, Value: 0}}}, "rules[0].multiply"},
		{"overflowing product", BoostSet{Rules: overflow}, "could overflow"},
		{"bad max adjustment", BoostSet{MaxAdjustment: -1}, "max_adjustment"},
		{"bad segment", BoostSet{Rules: []BoostRule{{Name: "a", Effect: EffectAdd, Value: 1, Segment: &RuleSegment{MinSpend: 5, MaxSpend: ptr(1)}}}}, "segment.max_spend"},
	}
	for _, tc := range tests {
		_, err := s.SetBoosts(ctx, tc.set)
		if !errors.Is(err, ErrInvalidRules) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: got %v, want ErrInvalidRules containing %q", tc.name, err, tc.wantErr)
		}
	}

	good := BoostSet{Rules: []BoostRule{
		add("acme"),
		{Name: "well rated", Attribute: "rating", Min: ptr(4.2), Effect: EffectMultiply, Value: 1.1},
		{Name: "cheap for thrifty", Attribute: "price", Max: ptr(20), Effect: EffectAdd, Value: 0.2, Segment: &RuleSegment{MaxSpend: ptr(50)}},
	}}
	v, err := s.SetBoosts(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	c := NewRulesCache(s, nil)
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r := c.Rules()
	good.MaxAdjustment = DefaultMaxAdjustment
	if r.Version != v || !reflect.DeepEqual(r.Boosts, good) {
		t.Errorf("cache has v%d %+v, want v%d %+v", r.Version, r.Boosts, v, good)
	}
	if _, err := s.SetBoosts(ctx, BoostSet{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if r := c.Rules(); len(r.Boosts.Rules) != 0 || r.Boosts.MaxAdjustment != DefaultMaxAdjustment {
		t.Errorf("after clearing: %+v", r.Boosts)
	}
}

func TestSmoothedRating(t *testing.T) {
	var p RatingPrior
	items := []Item{{RatingAverage: 4, RatingCount: 90}, {RatingAverage: 5, RatingCount: 1}, {RatingAverage: 4.6, RatingCount: 1000}, {}}
	for _, it := range items {
		p.Add(it)
	}
	mean := (4*90 + 5*1 + 4.6*1000) / 1091.0
	if math.Abs(p.Mean()-mean) > 1e-12 {
		t.Fatalf("mean %v, want %v", p.Mean(), mean)
	}
	one := p.Smoothed(items[1])
	if want := (10*mean + 5) / 11; math.Abs(one-want) > 1e-12 {
		t.Errorf("one 5-star rating smoothed to %v, want %v", one, want)
	}
	if thousand := p.Smoothed(items[2]); !(thousand > one) {
		t.Errorf("4.6 from 1000 ratings (%v) should outrank 5.0 from one (%v)", thousand, one)
	}
	if unrated := p.Smoothed(items[3]); math.Abs(unrated-mean) > 1e-12 {
		t.Errorf("an unrated item smooths to %v, want the mean %v", unrated, mean)
	}
}
