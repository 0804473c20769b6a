package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// Item attributes, boost rules and brand caps through gRPC against real
// Redis: rules change the order as configured and show in the reasons.
func TestBoostRulesAndBrandCapsThroughGRPC(t *testing.T) {
	e := newEnv(t, true)
	ctx := context.Background()
	now := e.clock.Now()
	items := plantedCatalog(now)
	for _, it := range items {
		it.Brand = "brand-" + it.GetItemId()[:1]   // a, b, c
		it.Seller = "seller-" + it.GetItemId()[1:] // 0..9
		it.Title = "Item " + it.GetItemId()
	}
	if _, err := e.catalog.DeclareAttributes(ctx, &recsysv1.DeclareAttributesRequest{Attributes: []*recsysv1.AttributeDeclaration{
		{Name: "margin", Type: recsysv1.AttributeType_ATTRIBUTE_TYPE_NUMBER},
	}}); err != nil {
		t.Fatal(err)
	}
	items = with(items, "b5", func(it *recsysv1.Item) {
		it.Promotion = true
		it.RatingAverage, it.RatingCount = 4.8, 200
		it.Attributes = []*recsysv1.Attribute{{Name: "margin", Value: &recsysv1.Attribute_NumberValue{NumberValue: 0.4}}}
	})
	e.upsert(t, items...)
	got, err := e.catalog.GetItems(ctx, &recsysv1.GetItemsRequest{ItemIds: []string{"b5"}})
	if err != nil || len(got.GetItems()) != 1 {
		t.Fatalf("GetItems: %v %v", got, err)
	}
	want := items[15]
	if !proto.Equal(got.GetItems()[0], want) {
		t.Errorf("b5 round trip:\n got %v\nwant %v", got.GetItems()[0], want)
	}

	e.record(t, ev("u", "a0", cart, now))
	req := &recsysv1.RecommendRequest{UserId: "u", Count: 3}
	before := ids(e.recommend(t, req).GetItems())
	if before[0][0] != 'a' || slices.Contains(before, "b5") {
		t.Fatalf("before rules: %v, want a-items (the premise)", before)
	}

	// A high-margin promotion lift puts b5 first; the reason names it.
	rules := []*recsysv1.BoostRule{
		{Name: "promoted margin", Attribute: "margin", Min: proto.Float64(0.3), Effect: &recsysv1.BoostRule_Add{Add: 5}},
		{Name: "promo", Attribute: "promotion", Equals: "true", Effect: &recsysv1.BoostRule_Multiply{Multiply: 1.2}},
	}
	set, err := e.catalog.SetBoostRules(ctx, &recsysv1.SetBoostRulesRequest{Rules: rules, MaxAdjustment: 10})
	if err != nil || set.GetRuleCount() != 2 {
		t.Fatalf("SetBoostRules: %v %v", set, err)
	}
	e.syncRules(t)
	res := e.recommend(t, req).GetItems()
	if res[0].GetItemId() != "b5" || !slices.Equal(res[0].GetReason().GetBoostRules(), []string{"promoted margin", "promo"}) ||
		!(res[0].GetReason().GetBoostAdjustment() >= 5) {
		t.Errorf("with the rules: %v, want b5 first naming both rules", res)
	}
	back, err := e.catalog.GetBoostRules(ctx, &recsysv1.GetBoostRulesRequest{})
	if err != nil || len(back.GetRules()) != 2 || !proto.Equal(back.GetRules()[0], rules[0]) || back.GetMaxAdjustment() != 10 {
		t.Errorf("GetBoostRules: %v %v", back, err)
	}

	// A brand cap of one: three brands in three items.
	capped := e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 3, MaxPerBrand: 1}).GetItems()
	brands := map[byte]bool{}
	for _, it := range capped {
		brands[it.GetItemId()[0]] = true
	}
	if len(brands) != 3 {
		t.Errorf("max_per_brand 1: %v, want three brands", ids(capped))
	}
}

func TestBoostRulesRejectBadInput(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	add := &recsysv1.BoostRule_Add{Add: 1}
	many := make([]*recsysv1.BoostRule, 1001)
	for i := range many {
		many[i] = &recsysv1.BoostRule{Name: strings.Repeat("r", 1+i%60) + string(rune('a'+i/60)), Attribute: "brand", Equals: "x", Effect: add}
	}
	overflow := make([]*recsysv1.BoostRule, 40)
	for i := range overflow {
		overflow[i] = &recsysv1.BoostRule{Name: string(rune('a' + i)), Effect: &recsysv1.BoostRule_Multiply{Multiply: 10}}
	}
	for _, tc := range []struct {
		name  string
		rules []*recsysv1.BoostRule
		field string
	}{
		{"1001 rules", many, "rules"},
		{"unknown attribute", []*recsysv1.BoostRule{{Name: "x", Attribute: "colour", Equals: "red", Effect: add}}, "rules[0].attribute"},
		{"no effect", []*recsysv1.BoostRule{{Name: "x", Attribute: "brand", Equals: "a"}}, "rules[0].effect"},
		{"overflow", overflow, "overflow"},
		{"range on a string", []*recsysv1.BoostRule{{Name: "x", Attribute: "brand", Min: proto.Float64(1), Effect: add}}, "rules[0].min"},
	} {
		_, err := e.catalog.SetBoostRules(ctx, &recsysv1.SetBoostRulesRequest{Rules: tc.rules})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want InvalidArgument naming %s", tc.name, err, tc.field)
		}
	}
	tooMany := make([]*recsysv1.Attribute, 33) // declared names, so only the count is wrong
	decl := make([]*recsysv1.AttributeDeclaration, len(tooMany))
	for i := range tooMany {
		name := fmt.Sprint("n", i)
		tooMany[i] = &recsysv1.Attribute{Name: name, Value: &recsysv1.Attribute_NumberValue{NumberValue: 1}}
		decl[i] = &recsysv1.AttributeDeclaration{Name: name, Type: recsysv1.AttributeType_ATTRIBUTE_TYPE_NUMBER}
	}
	if _, err := e.catalog.DeclareAttributes(ctx, &recsysv1.DeclareAttributesRequest{Attributes: decl}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		item  *recsysv1.Item
		field string
	}{
		{"undeclared attribute", &recsysv1.Item{ItemId: "x", Attributes: []*recsysv1.Attribute{{Name: "colour", Value: &recsysv1.Attribute_StringValue{StringValue: "red"}}}}, "colour"},
		{"attribute without value", &recsysv1.Item{ItemId: "x", Attributes: []*recsysv1.Attribute{{Name: "colour"}}}, "items[0].attributes[0]"},
		{"rating above 5", &recsysv1.Item{ItemId: "x", RatingAverage: 6, RatingCount: 1}, "items[0]: rating_average"},
		{"33 attributes", &recsysv1.Item{ItemId: "x", Attributes: tooMany}, "items[0]: attributes: 33, at most 32"},
	} {
		_, err := e.catalog.UpsertItems(ctx, &recsysv1.UpsertItemsRequest{Items: []*recsysv1.Item{tc.item}})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want InvalidArgument naming %s", tc.name, err, tc.field)
		}
	}
	if _, err := e.rec.Recommend(ctx, &recsysv1.RecommendRequest{UserId: "u", Count: 3, MaxPerSeller: -1}); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "max_per_seller") {
		t.Errorf("negative max_per_seller: %v", err)
	}
}

// Recommend's max_per_seller holds through gRPC: the user's favourite
// items all come from one seller, and the cap lets only one of them in.
func TestSellerCapThroughGRPC(t *testing.T) {
	e := newEnv(t, true)
	now := e.clock.Now()
	items := plantedCatalog(now)
	for _, it := range items {
		it.Seller = "seller-" + it.GetItemId() // one seller per item ...
		if it.GetItemId()[0] == 'a' {
			it.Seller = "seller-a" // ... but the a-items share one
		}
	}
	e.upsert(t, items...)
	e.record(t, ev("u", "a0", cart, now))
	aItems := func(res *recsysv1.RecommendResponse) int {
		n := 0
		for _, id := range ids(res.GetItems()) {
			if id[0] == 'a' {
				n++
			}
		}
		return n
	}
	if n := aItems(e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 4})); n < 2 {
		t.Fatalf("without a cap %d a-items in 4, want at least 2 (the premise)", n)
	}
	capped := e.recommend(t, &recsysv1.RecommendRequest{UserId: "u", Count: 4, MaxPerSeller: 1})
	if n := aItems(capped); n != 1 || len(capped.GetItems()) != 4 {
		t.Errorf("max_per_seller 1: %v, want 4 items with exactly one of seller-a's", ids(capped.GetItems()))
	}
}
