package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/recsys-dev/recsys/client"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// filterFlags are the flags of a Filter.
type filterFlags struct {
	categories         string
	excludeCategories  string
	minPrice, maxPrice string // empty: no bound
	includeUnavailable bool
	memberTier         string
	includePurchased   bool
}

func (o *filterFlags) register(fs *flag.FlagSet, purchased bool) {
	fs.StringVar(&o.categories, "categories", "", "only these comma-separated categories")
	fs.StringVar(&o.excludeCategories, "exclude-categories", "", "never these comma-separated categories")
	fs.StringVar(&o.minPrice, "min-price", "", "lowest price (inclusive)")
	fs.StringVar(&o.maxPrice, "max-price", "", "highest price (inclusive)")
	fs.BoolVar(&o.includeUnavailable, "include-unavailable", false, "return unavailable items too")
	fs.StringVar(&o.memberTier, "member-tier", "", "the user's membership tier (admits member-only items)")
	if purchased {
		fs.BoolVar(&o.includePurchased, "include-purchased", false, "return items the user bought too")
	}
}

// proto returns the filter, or nil when no flag is set.
func (o filterFlags) proto() (*recsysv1.Filter, error) {
	if o == (filterFlags{}) {
		return nil, nil
	}
	f := &recsysv1.Filter{
		IncludeCategories: splitList(o.categories),
		ExcludeCategories: splitList(o.excludeCategories),
		MemberTier:        o.memberTier,
		IncludePurchased:  o.includePurchased,
	}
	if o.includeUnavailable {
		f.Availability = recsysv1.Availability_AVAILABILITY_INCLUDE_UNAVAILABLE
	}
	for _, b := range []struct {
		flag, v string
		dst     **float64
	}{{"--min-price", o.minPrice, &f.MinPrice}, {"--max-price", o.maxPrice, &f.MaxPrice}} {
		if b.v == "" {
			continue
		}
		x, err := strconv.ParseFloat(b.v, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", b.flag, err)
		}
		*b.dst = &x
	}
	return f, nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	out := parts[:0]
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func runRecommend(ctx context.Context, x *invocation) error {
	var f filterFlags
	count := x.fs.Int("count", 10, "items to return")
	exclude := x.fs.String("exclude", "", "comma-separated item ids to leave out")
	contextItem := x.fs.String("context-item", "", "item the page is about")
	placement := x.fs.String("placement", "", `slot name on the page ("trending" asks for trending items)`)
	region := x.fs.String("region", "", "the shopper's region (items sold only elsewhere are left out)")
	perCategory := x.fs.Int("max-per-category", 0, "at most this many items per category (0: server default)")
	f.register(x.fs, true)
	args, err := x.exactly(1)
	if err != nil {
		return err
	}
	filter, err := f.proto()
	if err != nil {
		return err
	}
	req := &recsysv1.RecommendRequest{UserId: args[0], Count: int32(*count), ExcludeItemIds: splitList(*exclude),
		Filter: filter, MaxPerCategory: int32(*perCategory)}
	if *contextItem != "" || *placement != "" || *region != "" {
		req.Context = &recsysv1.RequestContext{ContextItemId: *contextItem, Placement: *placement, Region: *region}
	}
	c, err := x.client()
	if err != nil {
		return err
	}
	res, err := c.Recommendations.Recommend(ctx, req)
	if err != nil {
		return err
	}
	return x.printJSON(res)
}

// itemAnswer holds the flags of the answers about items (SimilarItems,
// BoughtTogether): count, exclusions, placement and the filter.
type itemAnswer struct {
	f         filterFlags
	count     *int
	exclude   *string
	placement *string
}

// newItemAnswer registers the flags; defaultPlacement is the server's
// placement when --placement is empty (for the help text).
func newItemAnswer(x *invocation, defaultPlacement string) *itemAnswer {
	a := &itemAnswer{
		count:   x.fs.Int("count", 10, "items to return"),
		exclude: x.fs.String("exclude", "", "comma-separated item ids to leave out"),
		placement: x.fs.String("placement", "", "slot name on the page, for attribution and the report (default "+
			`"`+defaultPlacement+`")`),
	}
	a.f.register(x.fs, false)
	return a
}

func runSimilar(ctx context.Context, x *invocation) error {
	a := newItemAnswer(x, "similar_items")
	args, err := x.exactly(1)
	if err != nil {
		return err
	}
	return a.run(ctx, x, func(c *client.Client, count int32, exclude []string, filter *recsysv1.Filter) (proto.Message, error) {
		return c.Recommendations.SimilarItems(ctx, &recsysv1.SimilarItemsRequest{ItemId: args[0], Count: count,
			ExcludeItemIds: exclude, Filter: filter, Placement: *a.placement})
	})
}

func runBoughtTogether(ctx context.Context, x *invocation) error {
	a := newItemAnswer(x, "bought_together")
	items, err := x.atLeast(1)
	if err != nil {
		return err
	}
	return a.run(ctx, x, func(c *client.Client, count int32, exclude []string, filter *recsysv1.Filter) (proto.Message, error) {
		return c.Recommendations.BoughtTogether(ctx, &recsysv1.BoughtTogetherRequest{ItemIds: items, Count: count,
			ExcludeItemIds: exclude, Filter: filter, Placement: *a.placement})
	})
}

// run builds the filter, connects, calls and prints the answer as JSON.
func (a *itemAnswer) run(ctx context.Context, x *invocation,
	call func(c *client.Client, count int32, exclude []string, filter *recsysv1.Filter) (proto.Message, error)) error {
	filter, err := a.f.proto()
	if err != nil {
		return err
	}
	c, err := x.client()
	if err != nil {
		return err
	}
	res, err := call(c, int32(*a.count), splitList(*a.exclude), filter)
	if err != nil {
		return err
	}
	return x.printJSON(res)
}

func runRank(ctx context.Context, x *invocation) error {
	var f filterFlags
	contextItem := x.fs.String("context-item", "", "item the page is about")
	rankRegion := x.fs.String("region", "", "the shopper's region (items sold only elsewhere are dropped)")
	popular := x.fs.Bool("unknown-by-popularity", false, "order items the model does not know by popularity (default: as given)")
	f.register(x.fs, true)
	args, err := x.atLeast(2)
	if err != nil {
		return err
	}
	filter, err := f.proto()
	if err != nil {
		return err
	}
	req := &recsysv1.RankItemsRequest{UserId: args[0], ItemIds: args[1:], Filter: filter}
	if *contextItem != "" || *rankRegion != "" {
		req.Context = &recsysv1.RequestContext{ContextItemId: *contextItem, Region: *rankRegion}
	}
	if *popular {
		req.UnknownOrder = recsysv1.UnknownOrder_UNKNOWN_ORDER_POPULARITY
	}
	c, err := x.client()
	if err != nil {
		return err
	}
	res, err := c.Recommendations.RankItems(ctx, req)
	if err != nil {
		return err
	}
	return x.printJSON(res)
}
