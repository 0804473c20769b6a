package recommend

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
)

// indexCases are requests whose filters reject few, many, or nearly all of
// the rows, with and without the per-category cap.
func indexCases() []Request {
	return []Request{
		{Count: 10},
		{Count: 20, MaxPerCategory: 2},
		{Count: 50, Filter: Filter{IncludeCategories: []string{"c5", "c6"}}},
		{Count: 30, Filter: Filter{ExcludeCategories: []string{"c0", "c1"}}},
		{Count: 40, Filter: Filter{Price: &PriceRange{Min: 49, Max: math.Inf(1)}}},
		{Count: 200, MaxPerCategory: 3},
		{Count: 2500},
	}
}

// With the flat index (every model below IndexMinItems) the answers are
// the exact float32 scan's: the same items, the same scores, bit for bit.
func TestIndexedAnswersAreTheExactScans(t *testing.T) {
	exact, _, _ := shopEngine(t, 3000, Config{ExactScan: true})
	indexed, _, _ := shopEngine(t, 3000, Config{})
	if indexed.indexFor(indexed.Model()) == nil {
		t.Fatal("the engine built no index")
	}
	ctx := context.Background()
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
		if !slices.Equal(got.Items, want.Items) || got.Partial != want.Partial {
			t.Errorf("case %d (%+v): the indexed answer differs\n got %v\nwant %v", i, req, head(got.Items), head(want.Items))
		}
		sreq := SimilarRequest{ItemID: indexed.Model().ItemID(int32(i * 7)), Count: req.Count, Filter: req.Filter}
		swant, err := exact.Similar(ctx, sreq)
		if err != nil {
			t.Fatal(err)
		}
		sgot, err := indexed.Similar(ctx, sreq)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(sgot.Items, swant.Items) {
			t.Errorf("case %d similar: the indexed answer differs\n got %v\nwant %v", i, head(sgot.Items), head(swant.Items))
		}
	}
}

func head(items []Item) string {
	return fmt.Sprint(items[:min(len(items), 5)])
}
