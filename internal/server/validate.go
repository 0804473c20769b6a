package server

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/recommend"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// Limits bound what one request may ask for.
type Limits struct {
	MaxCount       int           // items per answer, default 500
	MaxBatch       int           // events or items per write request, default 1000
	MaxExclude     int           // exclude_item_ids per request, default 1000
	MaxIDBytes     int           // bytes per user or item id, default and at most event.MaxIDBytes (256)
	MaxFutureSkew  time.Duration // how far in the future an event may be, default 5m
	MaxQuantity    int32         // per event, default 10000
	MaxCustomValue float32       // weight of a CUSTOM event, default 1000
	// MaxFilterCategories bounds each category list of a Filter, default 100.
	MaxFilterCategories int
	// MaxPushUsers bounds the user_ids of one BatchRecommend, default 10,000.
	MaxPushUsers int
}

// DefaultMaxBatch is the default Limits.MaxBatch.
const DefaultMaxBatch = 1000

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.MaxCount, 500)
	def(&l.MaxBatch, DefaultMaxBatch)
	def(&l.MaxExclude, 1000)
	def(&l.MaxIDBytes, event.MaxIDBytes)
	l.MaxIDBytes = min(l.MaxIDBytes, event.MaxIDBytes)
	def(&l.MaxFilterCategories, 100)
	def(&l.MaxPushUsers, 10_000)
	if l.MaxFutureSkew <= 0 {
		l.MaxFutureSkew = 5 * time.Minute
	}
	if l.MaxQuantity <= 0 {
		l.MaxQuantity = 10000
	}
	if l.MaxCustomValue <= 0 {
		l.MaxCustomValue = 1000
	}
	return l
}

// MaxCartItems bounds the item_ids of one BoughtTogether (a cart).
const MaxCartItems = 100

// minEventTime rejects timestamps that are certainly wrong (unset clocks).
var minEventTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// validator checks requests before any handler runs, so handlers can trust
// their input. Every failure names the field.
type validator struct {
	l   Limits
	now func() time.Time
}

func (v *validator) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := decodeError(ctx); err != nil {
			return nil, err // the request did not decode (see requestCodec)
		}
		if err := v.check(req); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

func (v *validator) check(req any) error {
	switch r := req.(type) {
	case *recsysv1.RecommendRequest:
		if err := v.id("user_id", r.GetUserId()); err != nil {
			return err
		}
		if err := v.count(r.GetCount()); err != nil {
			return err
		}
		if err := v.ids("exclude_item_ids", r.GetExcludeItemIds(), v.l.MaxExclude, false); err != nil {
			return err
		}
		if c := r.GetContext(); c != nil && c.GetContextItemId() != "" {
			if err := v.id("context.context_item_id", c.GetContextItemId()); err != nil {
				return err
			}
		}
		if err := v.placement("context.placement", r.GetContext().GetPlacement()); err != nil {
			return err
		}
		if err := region("context.region", r.GetContext().GetRegion()); err != nil {
			return err
		}
		for _, c := range []struct {
			field string
			n     int32
		}{{"max_per_category", r.GetMaxPerCategory()}, {"max_per_brand", r.GetMaxPerBrand()}, {"max_per_seller", r.GetMaxPerSeller()}} {
			if c.n < 0 {
				return invalid(c.field, fmt.Sprintf("must be >= 0 (0: the server's default), got %d", c.n))
			}
		}
		return v.filter("filter.", r.GetFilter())
	case *recsysv1.SimilarItemsRequest:
		if err := v.id("item_id", r.GetItemId()); err != nil {
			return err
		}
		return v.itemAnswer(r.GetCount(), r.GetExcludeItemIds(), r.GetFilter(), r.GetPlacement())
	case *recsysv1.BoughtTogetherRequest:
		if err := v.ids("item_ids", r.GetItemIds(), MaxCartItems, true); err != nil {
			return err
		}
		return v.itemAnswer(r.GetCount(), r.GetExcludeItemIds(), r.GetFilter(), r.GetPlacement())
	case *recsysv1.RankItemsRequest:
		return v.rankItems(r)
	case *recsysv1.BatchRecommendRequest:
		return v.batchRecommend(r)
	case *recsysv1.RecordEventsRequest:
		return v.events(r.GetEvents())
	case *recsysv1.GetProfileRequest:
		return v.id("user_id", r.GetUserId())
	case *recsysv1.DeleteUserRequest:
		return v.id("user_id", r.GetUserId())
	case *recsysv1.SetOptOutRequest:
		return v.id("user_id", r.GetUserId())
	case *recsysv1.SetBlocklistRequest:
		return v.blocklist(r.GetItemIds(), r.GetCategories(), false)
	case *recsysv1.AddToBlocklistRequest:
		return v.blocklist(r.GetItemIds(), r.GetCategories(), true)
	case *recsysv1.RemoveFromBlocklistRequest:
		return v.blocklist(r.GetItemIds(), r.GetCategories(), true)
	case *recsysv1.UpsertCategoriesRequest:
		return v.categories(r.GetCategories())
	case *recsysv1.DeclareAttributesRequest:
		return v.declarations(r.GetAttributes())
	case *recsysv1.UpsertItemsRequest:
		return v.items(r.GetItems())
	case *recsysv1.GetItemsRequest:
		return v.ids("item_ids", r.GetItemIds(), v.l.MaxBatch, true)
	case *recsysv1.ActivateModelRequest:
		if r.GetVersion() == "" {
			return invalid("version", "must not be empty")
		}
		if len(r.GetVersion()) > v.l.MaxIDBytes || !utf8.ValidString(r.GetVersion()) {
			return invalid("version", "not a valid version string")
		}
	case *recsysv1.GetModelReportRequest:
		if len(r.GetVersion()) > v.l.MaxIDBytes || !utf8.ValidString(r.GetVersion()) {
			return invalid("version", "not a valid version string")
		}
	}
	return nil
}

// rankItems checks a RankItems request: the user, 1..MaxRankItems distinct
// candidates, the context, the filter and the unknown order.
func (v *validator) rankItems(r *recsysv1.RankItemsRequest) error {
	if err := v.id("user_id", r.GetUserId()); err != nil {
		return err
	}
	if err := v.ids("item_ids", r.GetItemIds(), recommend.MaxRankItems, true); err != nil {
		return err
	}
	seen := make(map[string]int, len(r.GetItemIds()))
	for i, id := range r.GetItemIds() {
		if j, dup := seen[id]; dup {
			return invalid("item_ids["+strconv.Itoa(i)+"]", fmt.Sprintf("repeats item_ids[%d] (%q): candidates must be distinct", j, id))
		}
		seen[id] = i
	}
	if id := r.GetContext().GetContextItemId(); id != "" {
		if err := v.id("context.context_item_id", id); err != nil {
			return err
		}
	}
	if err := v.placement("context.placement", r.GetContext().GetPlacement()); err != nil {
		return err
	}
	if err := region("context.region", r.GetContext().GetRegion()); err != nil {
		return err
	}
	if o := r.GetUnknownOrder(); recsysv1.UnknownOrder_name[int32(o)] == "" {
		return invalid("unknown_order", fmt.Sprintf("unknown value %d", o))
	}
	return v.filter("filter.", r.GetFilter())
}

// region checks an optional region name.
func region(field, r string) error {
	if r == "" {
		return nil
	}
	if err := catalog.ValidRegion(r); err != nil {
		return invalid(field, err.Error())
	}
	return nil
}

// id checks an id, and also a category or tier name: the same rules.
func (v *validator) id(field, s string) error {
	// event.CheckID is the one id rule of the whole system (imports, data
	// set readers, trainer, model artifact); Limits.MaxIDBytes may only
	// tighten it.
	switch {
	case s == "":
		return invalid(field, "must not be empty")
	case len(s) > v.l.MaxIDBytes:
		return invalid(field, fmt.Sprintf("is %d bytes, at most %d allowed", len(s), v.l.MaxIDBytes))
	}
	if err := event.CheckID(s); err != nil {
		return invalid(field, err.Error())
	}
	return nil
}

func (v *validator) ids(field string, ids []string, max int, required bool) error {
	if required && len(ids) == 0 {
		return invalid(field, "must not be empty")
	}
	if len(ids) > max {
		return invalid(field, fmt.Sprintf("has %d entries, at most %d allowed", len(ids), max))
	}
	for i, id := range ids {
		if err := v.id(field+"["+strconv.Itoa(i)+"]", id); err != nil {
			return err
		}
	}
	return nil
}

// itemAnswer checks what SimilarItems and BoughtTogether share: count,
// exclude_item_ids and filter.
func (v *validator) itemAnswer(count int32, exclude []string, f *recsysv1.Filter, placement string) error {
	if err := v.count(count); err != nil {
		return err
	}
	if err := v.placement("placement", placement); err != nil {
		return err
	}
	if err := v.ids("exclude_item_ids", exclude, v.l.MaxExclude, false); err != nil {
		return err
	}
	return v.filter("filter.", f)
}

// placement checks an optional placement name: a free-form label of at
// most MaxIDBytes of valid UTF-8.
func (v *validator) placement(field, p string) error {
	if len(p) > v.l.MaxIDBytes || !utf8.ValidString(p) {
		return invalid(field, fmt.Sprintf("must be valid UTF-8 of at most %d bytes", v.l.MaxIDBytes))
	}
	return nil
}

func (v *validator) count(c int32) error {
	if c <= 0 || int(c) > v.l.MaxCount {
		return invalid("count", fmt.Sprintf("must be 1..%d, got %d", v.l.MaxCount, c))
	}
	return nil
}

// batch checks the size of a write request's list (events, items,
// categories): 1..MaxBatch entries.
func (v *validator) batch(field string, n int) error {
	if n == 0 {
		return invalid(field, "must not be empty")
	}
	if n > v.l.MaxBatch {
		return invalid(field, fmt.Sprintf("has %d %s, at most %d per batch", n, field, v.l.MaxBatch))
	}
	return nil
}

// maxQueryBytes bounds a SEARCH event's query.
const maxQueryBytes = 1024

func (v *validator) events(evs []*recsysv1.Event) error {
	if err := v.batch("events", len(evs)); err != nil {
		return err
	}
	latest := v.now().Add(v.l.MaxFutureSkew)
	for i, e := range evs {
		f := "events[" + strconv.Itoa(i) + "]."
		if e == nil {
			return invalid(f[:len(f)-1], "must not be null")
		}
		if err := v.id(f+"event_id", e.GetEventId()); err != nil {
			return err
		}
		if err := v.id(f+"user_id", e.GetUserId()); err != nil {
			return err
		}
		if err := region(f+"region", e.GetRegion()); err != nil {
			return err
		}
		t := e.GetType()
		switch {
		case t == recsysv1.EventType_EVENT_TYPE_SEARCH:
			if e.GetItemId() != "" {
				return invalid(f+"item_id", "must be empty for EVENT_TYPE_SEARCH")
			}
		case t == recsysv1.EventType_EVENT_TYPE_NOT_INTERESTED && e.GetItemId() == "":
			if c := e.GetCategory(); c == "" || len(c) > v.l.MaxIDBytes || !utf8.ValidString(c) {
				return invalid(f+"category", fmt.Sprintf("EVENT_TYPE_NOT_INTERESTED needs item_id or a category of valid UTF-8, 1 to %d bytes", v.l.MaxIDBytes))
			}
		default:
			if err := v.id(f+"item_id", e.GetItemId()); err != nil {
				return err
			}
		}
		if q := e.GetQuery(); t == recsysv1.EventType_EVENT_TYPE_SEARCH {
			if q == "" || len(q) > maxQueryBytes || !utf8.ValidString(q) {
				return invalid(f+"query", fmt.Sprintf("must be valid UTF-8 of 1 to %d bytes for EVENT_TYPE_SEARCH", maxQueryBytes))
			}
		} else if q != "" {
			return invalid(f+"query", "only EVENT_TYPE_SEARCH events carry a query")
		}
		if r := e.GetRating(); t == recsysv1.EventType_EVENT_TYPE_RATING {
			if !(r >= event.MinRating && r <= event.MaxRating) {
				return invalid(f+"rating", fmt.Sprintf("must be %d to %d for EVENT_TYPE_RATING, got %v", event.MinRating, event.MaxRating, r))
			}
		} else if r != 0 {
			return invalid(f+"rating", "only EVENT_TYPE_RATING events carry a rating")
		}
		if t != recsysv1.EventType_EVENT_TYPE_NOT_INTERESTED && e.GetCategory() != "" {
			return invalid(f+"category", "only EVENT_TYPE_NOT_INTERESTED events carry a category")
		}
		if t == recsysv1.EventType_EVENT_TYPE_NOT_INTERESTED && e.GetItemId() != "" && e.GetCategory() != "" {
			return invalid(f+"category", "EVENT_TYPE_NOT_INTERESTED dismisses an item or a category, not both")
		}
		switch t {
		case recsysv1.EventType_EVENT_TYPE_VIEW, recsysv1.EventType_EVENT_TYPE_ADD_TO_CART, recsysv1.EventType_EVENT_TYPE_PURCHASE,
			recsysv1.EventType_EVENT_TYPE_IMPRESSION, recsysv1.EventType_EVENT_TYPE_PUSH,
			recsysv1.EventType_EVENT_TYPE_SEARCH, recsysv1.EventType_EVENT_TYPE_RATING,
			recsysv1.EventType_EVENT_TYPE_NOT_INTERESTED, recsysv1.EventType_EVENT_TYPE_WISHLIST:
			if e.GetWeight() != 0 {
				return invalid(f+"weight", "only EVENT_TYPE_CUSTOM events carry a weight")
			}
		case recsysv1.EventType_EVENT_TYPE_CUSTOM:
			w := e.GetWeight()
			if !(w > 0) || w > v.l.MaxCustomValue || math.IsInf(float64(w), 0) {
				return invalid(f+"weight", fmt.Sprintf("must be > 0 and <= %v for EVENT_TYPE_CUSTOM, got %v", v.l.MaxCustomValue, w))
			}
		case recsysv1.EventType_EVENT_TYPE_UNSPECIFIED:
			return invalid(f+"type", "must be set")
		default:
			return invalid(f+"type", fmt.Sprintf("unknown event type %d", int32(t)))
		}
		for _, o := range []struct{ name, v string }{{"recommendation_id", e.GetRecommendationId()}, {"placement", e.GetPlacement()}} {
			if len(o.v) > v.l.MaxIDBytes || !utf8.ValidString(o.v) {
				return invalid(f+o.name, fmt.Sprintf("must be valid UTF-8 of at most %d bytes", v.l.MaxIDBytes))
			}
		}
		if q := e.GetQuantity(); q < 0 || q > v.l.MaxQuantity {
			return invalid(f+"quantity", fmt.Sprintf("must be 0..%d, got %d", v.l.MaxQuantity, q))
		}
		if ts := e.GetTimestamp(); ts != nil {
			if err := ts.CheckValid(); err != nil {
				return invalid(f+"timestamp", err.Error())
			}
			t := ts.AsTime()
			if t.Before(minEventTime) {
				return invalid(f+"timestamp", "is before 2000-01-01")
			}
			if t.After(latest) {
				return invalid(f+"timestamp", fmt.Sprintf("is more than %v in the future", v.l.MaxFutureSkew))
			}
		}
	}
	return nil
}

func (v *validator) items(items []*recsysv1.Item) error {
	if err := v.batch("items", len(items)); err != nil {
		return err
	}
	for i, it := range items {
		f := "items[" + strconv.Itoa(i) + "]."
		if it == nil {
			return invalid(f[:len(f)-1], "must not be null")
		}
		if err := v.id(f+"item_id", it.GetItemId()); err != nil {
			return err
		}
		if c := it.GetCategory(); len(c) > v.l.MaxIDBytes || !utf8.ValidString(c) {
			return invalid(f+"category", fmt.Sprintf("must be valid UTF-8 of at most %d bytes", v.l.MaxIDBytes))
		}
		if p := it.GetPrice(); p < 0 || math.IsNaN(p) || math.IsInf(p, 0) {
			return invalid(f+"price", fmt.Sprintf("must be a finite number >= 0, got %v", p))
		}
		for _, ts := range []struct {
			name string
			t    *timestamppb.Timestamp
		}{{"created_at", it.GetCreatedAt()}, {"valid_from", it.GetValidFrom()}, {"valid_until", it.GetValidUntil()}} {
			if ts.t == nil {
				continue
			}
			if err := ts.t.CheckValid(); err != nil {
				return invalid(f+ts.name, err.Error())
			}
		}
		if from, until := it.GetValidFrom(), it.GetValidUntil(); from != nil && until != nil && !until.AsTime().After(from.AsTime()) {
			return invalid(f+"valid_until", "must be after valid_from")
		}
		for j, a := range it.GetAttributes() {
			if a == nil || a.GetValue() == nil {
				return invalid(f+"attributes["+strconv.Itoa(j)+"]", "needs a string_value or a number_value")
			}
		}
		if n := len(it.GetRegions()); n > catalog.MaxItemRegions {
			return invalid(f+"regions", fmt.Sprintf("%d regions, at most %d", n, catalog.MaxItemRegions))
		}
		for j, r := range it.GetRegions() {
			if err := catalog.ValidRegion(r); err != nil {
				return invalid(f+"regions["+strconv.Itoa(j)+"]", err.Error())
			}
			if slices.Contains(it.GetRegions()[:j], r) {
				return invalid(f+"regions["+strconv.Itoa(j)+"]", fmt.Sprintf("%q repeated", r))
			}
		}
		if err := catalog.ValidateDescription(fromProtoItem(it)); err != nil {
			return invalid(f[:len(f)-1], err.Error())
		}
	}
	return nil
}

func finiteNonNegative(x float64) bool { return x >= 0 && !math.IsInf(x, 0) }

func (v *validator) filter(prefix string, f *recsysv1.Filter) error {
	if f == nil {
		return nil
	}
	if err := v.ids(prefix+"include_categories", f.GetIncludeCategories(), v.l.MaxFilterCategories, false); err != nil {
		return err
	}
	if err := v.ids(prefix+"exclude_categories", f.GetExcludeCategories(), v.l.MaxFilterCategories, false); err != nil {
		return err
	}
	if f.MinPrice != nil && !finiteNonNegative(f.GetMinPrice()) {
		return invalid(prefix+"min_price", fmt.Sprintf("must be a finite number >= 0, got %v", f.GetMinPrice()))
	}
	if f.MaxPrice != nil && !finiteNonNegative(f.GetMaxPrice()) {
		return invalid(prefix+"max_price", fmt.Sprintf("must be a finite number >= 0, got %v", f.GetMaxPrice()))
	}
	if f.MinPrice != nil && f.MaxPrice != nil && f.GetMaxPrice() < f.GetMinPrice() {
		return invalid(prefix+"max_price", fmt.Sprintf("must be >= min_price %v, got %v", f.GetMinPrice(), f.GetMaxPrice()))
	}
	switch a := f.GetAvailability(); a {
	case recsysv1.Availability_AVAILABILITY_UNSPECIFIED, recsysv1.Availability_AVAILABILITY_AVAILABLE_ONLY,
		recsysv1.Availability_AVAILABILITY_INCLUDE_UNAVAILABLE:
	default:
		return invalid(prefix+"availability", fmt.Sprintf("unknown value %d", int32(a)))
	}
	if t := f.GetMemberTier(); t != "" {
		if err := v.id(prefix+"member_tier", t); err != nil {
			return err
		}
	}
	return nil
}

func (v *validator) blocklist(items, categories []string, needOne bool) error {
	if needOne && len(items) == 0 && len(categories) == 0 {
		return invalid("item_ids", "item_ids and categories must not both be empty")
	}
	if err := v.ids("item_ids", items, catalog.MaxBlockedItems, false); err != nil {
		return err
	}
	return v.ids("categories", categories, catalog.MaxBlockedCategories, false)
}

func (v *validator) categories(cats []*recsysv1.Category) error {
	if err := v.batch("categories", len(cats)); err != nil {
		return err
	}
	for i, c := range cats {
		f := "categories[" + strconv.Itoa(i) + "]."
		if c == nil {
			return invalid(f[:len(f)-1], "must not be null")
		}
		if err := v.id(f+"name", c.GetName()); err != nil {
			return err
		}
		if d := c.GetRepeatableAfter(); d != nil {
			if err := d.CheckValid(); err != nil {
				return invalid(f+"repeatable_after", err.Error())
			}
			if x := d.AsDuration(); x < 0 || x > catalog.MaxRepeatableAfter {
				return invalid(f+"repeatable_after", fmt.Sprintf("must be within 0..%v, got %v", catalog.MaxRepeatableAfter, x))
			}
		}
	}
	return nil
}

// declarations checks a DeclareAttributes request.
func (v *validator) declarations(ds []*recsysv1.AttributeDeclaration) error {
	if len(ds) == 0 || len(ds) > catalog.MaxDeclarations {
		return invalid("attributes", fmt.Sprintf("must hold 1 to %d declarations, got %d", catalog.MaxDeclarations, len(ds)))
	}
	for i, d := range ds {
		f := "attributes[" + strconv.Itoa(i) + "]"
		if err := catalog.ValidAttrName(d.GetName()); err != nil {
			return invalid(f+".name", err.Error())
		}
		if t := d.GetType(); t != recsysv1.AttributeType_ATTRIBUTE_TYPE_STRING && t != recsysv1.AttributeType_ATTRIBUTE_TYPE_NUMBER {
			return invalid(f+".type", "must be ATTRIBUTE_TYPE_STRING or ATTRIBUTE_TYPE_NUMBER")
		}
	}
	return nil
}
