package server

import (
	"context"
	"errors"
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
	LoadRules(ctx context.Context) (*catalog.Rules, error)
}

var _ ShopRules = (*catalog.Store)(nil)

type catalogService struct {
	recsysv1.UnimplementedCatalogServiceServer
	store CatalogStore
	rules ShopRules // nil: the rule RPCs answer FailedPrecondition
}

var errNoRules = PreconditionError(errors.New("this server keeps no shop rules"))

func (s *catalogService) UpsertItems(ctx context.Context, req *recsysv1.UpsertItemsRequest) (*recsysv1.UpsertItemsResponse, error) {
	items := make([]catalog.Item, len(req.GetItems()))
	for i, it := range req.GetItems() {
		items[i] = catalog.Item{
			ID:         it.GetItemId(),
			Category:   it.GetCategory(),
			Price:      it.GetPrice(),
			Available:  it.GetAvailable(),
			MemberOnly: it.GetMemberOnly(),
		}
		if ts := it.GetCreatedAt(); ts != nil {
			items[i].CreatedAt = ts.AsTime()
		}
		if ts := it.GetValidFrom(); ts != nil {
			items[i].ValidFrom = ts.AsTime()
		}
		if ts := it.GetValidUntil(); ts != nil {
			items[i].ValidUntil = ts.AsTime()
		}
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

func toProtoItem(it catalog.Item) *recsysv1.Item {
	p := &recsysv1.Item{ItemId: it.ID, Category: it.Category, Price: it.Price, Available: it.Available, MemberOnly: it.MemberOnly}
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
