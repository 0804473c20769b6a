package server

import (
	"context"
	"errors"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/internal/catalog"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// CatalogStore persists catalog items (implemented by *catalog.Store).
type CatalogStore interface {
	Upsert(ctx context.Context, items []catalog.Item) error
	Get(ctx context.Context, ids []string) ([]catalog.Item, error)
}

// ShopRules stores the shop's global rules: blocklist and category
// settings (implemented by *catalog.Store).
type ShopRules interface {
	SetBlocklist(ctx context.Context, items, categories []string) (catalog.BlocklistSummary, error)
	AddToBlocklist(ctx context.Context, items, categories []string) (catalog.BlocklistSummary, error)
	RemoveFromBlocklist(ctx context.Context, items, categories []string) (catalog.BlocklistSummary, error)
	UpsertCategories(ctx context.Context, cats []catalog.Category) error
	DeclareAttributes(ctx context.Context, decls []catalog.Declaration) (int, error)
	SetBoosts(ctx context.Context, set catalog.BoostSet) (int64, error)
	LoadRules(ctx context.Context) (*catalog.Rules, error)
}

type catalogService struct {
	recsysv1.UnimplementedCatalogServiceServer
	store CatalogStore
	rules ShopRules // nil: the rule RPCs answer FailedPrecondition
}

var errNoRules = PreconditionError(errors.New("this server keeps no shop rules"))

func (s *catalogService) UpsertItems(ctx context.Context, req *recsysv1.UpsertItemsRequest) (*recsysv1.UpsertItemsResponse, error) {
	items := make([]catalog.Item, len(req.GetItems()))
	for i, it := range req.GetItems() {
		items[i] = fromProtoItem(it)
	}
	if err := s.store.Upsert(ctx, items); err != nil {
		return nil, err
	}
	return &recsysv1.UpsertItemsResponse{Upserted: int32(len(items))}, nil
}

func (s *catalogService) GetItems(ctx context.Context, req *recsysv1.GetItemsRequest) (*recsysv1.GetItemsResponse, error) {
	items, err := s.store.Get(ctx, req.GetItemIds())
	if err != nil {
		return nil, err
	}
	out := make([]*recsysv1.Item, len(items))
	for i, it := range items {
		out[i] = toProtoItem(it)
	}
	return &recsysv1.GetItemsResponse{Items: out}, nil
}

func fromProtoItem(it *recsysv1.Item) catalog.Item {
	out := catalog.Item{
		ID:            it.GetItemId(),
		Category:      it.GetCategory(),
		Price:         it.GetPrice(),
		Available:     it.GetAvailable(),
		MemberOnly:    it.GetMemberOnly(),
		Title:         it.GetTitle(),
		Brand:         it.GetBrand(),
		Seller:        it.GetSeller(),
		RatingAverage: it.GetRatingAverage(),
		RatingCount:   it.GetRatingCount(),
		Promotion:     it.GetPromotion(),
		Regions:       slices.Clone(it.GetRegions()),
	}
	for _, f := range []struct {
		ts  *timestamppb.Timestamp
		dst *time.Time
	}{{it.GetCreatedAt(), &out.CreatedAt}, {it.GetValidFrom(), &out.ValidFrom}, {it.GetValidUntil(), &out.ValidUntil}} {
		if f.ts != nil {
			*f.dst = f.ts.AsTime()
		}
	}
	for _, a := range it.GetAttributes() {
		attr := catalog.Attribute{Name: a.GetName()}
		switch v := a.GetValue().(type) {
		case *recsysv1.Attribute_StringValue:
			attr.Type, attr.Str = catalog.AttrString, v.StringValue
		case *recsysv1.Attribute_NumberValue:
			attr.Type, attr.Num = catalog.AttrNumber, v.NumberValue
		}
		out.Attributes = append(out.Attributes, attr)
	}
	return out
}

func toProtoItem(it catalog.Item) *recsysv1.Item {
	p := &recsysv1.Item{ItemId: it.ID, Category: it.Category, Price: it.Price, Available: it.Available, MemberOnly: it.MemberOnly,
		Title: it.Title, Brand: it.Brand, Seller: it.Seller, RatingAverage: it.RatingAverage, RatingCount: it.RatingCount,
		Promotion: it.Promotion, Regions: it.Regions}
	for _, a := range it.Attributes {
		pa := &recsysv1.Attribute{Name: a.Name}
		if a.Type == catalog.AttrNumber {
			pa.Value = &recsysv1.Attribute_NumberValue{NumberValue: a.Num}
		} else {
			pa.Value = &recsysv1.Attribute_StringValue{StringValue: a.Str}
		}
		p.Attributes = append(p.Attributes, pa)
	}
	for _, f := range []struct {
		t   time.Time
		dst **timestamppb.Timestamp
	}{{it.CreatedAt, &p.CreatedAt}, {it.ValidFrom, &p.ValidFrom}, {it.ValidUntil, &p.ValidUntil}} {
		if !f.t.IsZero() {
			*f.dst = timestamppb.New(f.t)
		}
	}
	return p
}

func toSummary(s catalog.BlocklistSummary) *recsysv1.BlocklistSummary {
	return &recsysv1.BlocklistSummary{ItemCount: int32(s.Items), CategoryCount: int32(s.Categories), Version: s.Version}
}

func (s *catalogService) SetBlocklist(ctx context.Context, req *recsysv1.SetBlocklistRequest) (*recsysv1.SetBlocklistResponse, error) {
	if s.rules == nil {
		return nil, errNoRules
	}
	sum, err := s.rules.SetBlocklist(ctx, req.GetItemIds(), req.GetCategories())
	if err != nil {
		return nil, err
	}
	return &recsysv1.SetBlocklistResponse{Blocklist: toSummary(sum)}, nil
}

func (s *catalogService) AddToBlocklist(ctx context.Context, req *recsysv1.AddToBlocklistRequest) (*recsysv1.AddToBlocklistResponse, error) {
	if s.rules == nil {
		return nil, errNoRules
	}
	sum, err := s.rules.AddToBlocklist(ctx, req.GetItemIds(), req.GetCategories())
	if err != nil {
		return nil, err
	}
	return &recsysv1.AddToBlocklistResponse{Blocklist: toSummary(sum)}, nil
}

func (s *catalogService) RemoveFromBlocklist(ctx context.Context, req *recsysv1.RemoveFromBlocklistRequest) (*recsysv1.RemoveFromBlocklistResponse, error) {
	if s.rules == nil {
		return nil, errNoRules
	}
	sum, err := s.rules.RemoveFromBlocklist(ctx, req.GetItemIds(), req.GetCategories())
	if err != nil {
		return nil, err
	}
	return &recsysv1.RemoveFromBlocklistResponse{Blocklist: toSummary(sum)}, nil
}

func (s *catalogService) GetBlocklist(ctx context.Context, _ *recsysv1.GetBlocklistRequest) (*recsysv1.GetBlocklistResponse, error) {
	if s.rules == nil {
		return nil, errNoRules
	}
	r, err := s.rules.LoadRules(ctx)
	if err != nil {
		return nil, err
	}
	items, cats := r.SortedBlocklist()
	return &recsysv1.GetBlocklistResponse{ItemIds: items, Categories: cats, Version: r.Version}, nil
}

func (s *catalogService) UpsertCategories(ctx context.Context, req *recsysv1.UpsertCategoriesRequest) (*recsysv1.UpsertCategoriesResponse, error) {
	if s.rules == nil {
		return nil, errNoRules
	}
	cats := make([]catalog.Category, len(req.GetCategories()))
	for i, c := range req.GetCategories() {
		cats[i] = catalog.Category{Name: c.GetName(), RepeatableAfter: c.GetRepeatableAfter().AsDuration()}
	}
	if err := s.rules.UpsertCategories(ctx, cats); err != nil {
		return nil, err
	}
	return &recsysv1.UpsertCategoriesResponse{Upserted: int32(len(cats))}, nil
}

func (s *catalogService) ListCategories(ctx context.Context, _ *recsysv1.ListCategoriesRequest) (*recsysv1.ListCategoriesResponse, error) {
	if s.rules == nil {
		return nil, errNoRules
	}
	r, err := s.rules.LoadRules(ctx)
	if err != nil {
		return nil, err
	}
	cats := r.SortedCategories()
	out := make([]*recsysv1.Category, len(cats))
	for i, c := range cats {
		out[i] = &recsysv1.Category{Name: c.Name}
		if c.RepeatableAfter > 0 {
			out[i].RepeatableAfter = durationpb.New(c.RepeatableAfter)
		}
	}
	return &recsysv1.ListCategoriesResponse{Categories: out}, nil
}

func (s *catalogService) DeclareAttributes(ctx context.Context, req *recsysv1.DeclareAttributesRequest) (*recsysv1.DeclareAttributesResponse, error) {
	if s.rules == nil {
		return nil, errNoRules
	}
	decls := make([]catalog.Declaration, len(req.GetAttributes()))
	for i, d := range req.GetAttributes() {
		decls[i] = catalog.Declaration{Name: d.GetName(), Type: catalog.AttrType(d.GetType())} // the numbers match
	}
	n, err := s.rules.DeclareAttributes(ctx, decls)
	if err != nil {
		return nil, err
	}
	return &recsysv1.DeclareAttributesResponse{Declared: int32(n)}, nil
}

func (s *catalogService) ListAttributes(ctx context.Context, _ *recsysv1.ListAttributesRequest) (*recsysv1.ListAttributesResponse, error) {
	if s.rules == nil {
		return nil, errNoRules
	}
	r, err := s.rules.LoadRules(ctx)
	if err != nil {
		return nil, err
	}
	decls := r.SortedDeclarations()
	out := make([]*recsysv1.AttributeDeclaration, len(decls))
	for i, d := range decls {
		out[i] = &recsysv1.AttributeDeclaration{Name: d.Name, Type: recsysv1.AttributeType(d.Type)}
	}
	return &recsysv1.ListAttributesResponse{Attributes: out}, nil
}

func (s *catalogService) SetBoostRules(ctx context.Context, req *recsysv1.SetBoostRulesRequest) (*recsysv1.SetBoostRulesResponse, error) {
	if s.rules == nil {
		return nil, errNoRules
	}
	set := catalog.BoostSet{MaxAdjustment: req.GetMaxAdjustment(), Rules: make([]catalog.BoostRule, len(req.GetRules()))}
	for i, r := range req.GetRules() {
		set.Rules[i] = fromProtoRule(r)
	}
	v, err := s.rules.SetBoosts(ctx, set)
	if err != nil {
		return nil, err
	}
	return &recsysv1.SetBoostRulesResponse{RuleCount: int32(len(set.Rules)), Version: v}, nil
}

func (s *catalogService) GetBoostRules(ctx context.Context, _ *recsysv1.GetBoostRulesRequest) (*recsysv1.GetBoostRulesResponse, error) {
	if s.rules == nil {
		return nil, errNoRules
	}
	r, err := s.rules.LoadRules(ctx)
	if err != nil {
		return nil, err
	}
	out := &recsysv1.GetBoostRulesResponse{MaxAdjustment: r.Boosts.MaxAdjustment, Version: r.Version}
	for _, rule := range r.Boosts.Rules {
		out.Rules = append(out.Rules, toProtoRule(rule))
	}
	return out, nil
}

func fromProtoRule(r *recsysv1.BoostRule) catalog.BoostRule {
	if r == nil {
		return catalog.BoostRule{} // refused by the store, which names rules[i].name
	}
	out := catalog.BoostRule{Name: r.GetName(), Attribute: r.GetAttribute(), Equals: r.GetEquals()}
	if r.Min != nil {
		out.Min = new(r.GetMin())
	}
	if r.Max != nil {
		out.Max = new(r.GetMax())
	}
	switch e := r.GetEffect().(type) {
	case *recsysv1.BoostRule_Add:
		out.Effect, out.Value = catalog.EffectAdd, e.Add
	case *recsysv1.BoostRule_Multiply:
		out.Effect, out.Value = catalog.EffectMultiply, e.Multiply
	}
	if seg := r.GetSegment(); seg != nil {
		out.Segment = &catalog.RuleSegment{
			Lifecycle: int(seg.GetLifecycle()), MinPerMonth: seg.GetMinPurchasesPer_30D(), MinSpend: seg.GetMinSpend(),
		}
		if seg.MaxSpend != nil {
			out.Segment.MaxSpend = new(seg.GetMaxSpend())
		}
	}
	return out
}

func toProtoRule(r catalog.BoostRule) *recsysv1.BoostRule {
	out := &recsysv1.BoostRule{Name: r.Name, Attribute: r.Attribute, Equals: r.Equals, Min: r.Min, Max: r.Max}
	if r.Effect == catalog.EffectMultiply {
		out.Effect = &recsysv1.BoostRule_Multiply{Multiply: r.Value}
	} else {
		out.Effect = &recsysv1.BoostRule_Add{Add: r.Value}
	}
	if seg := r.Segment; seg != nil {
		out.Segment = &recsysv1.RuleSegment{Lifecycle: recsysv1.Lifecycle(seg.Lifecycle), MinPurchasesPer_30D: seg.MinPerMonth,
			MinSpend: seg.MinSpend, MaxSpend: seg.MaxSpend}
	}
	return out
}
