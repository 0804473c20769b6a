package server

import (
	"context"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/internal/catalog"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// CatalogStore persists catalog items (implemented by *catalog.Store).
type CatalogStore interface {
	Upsert(ctx context.Context, items []catalog.Item) error
	Get(ctx context.Context, ids []string) ([]catalog.Item, error)
}

type catalogService struct {
	recsysv1.UnimplementedCatalogServiceServer
	store CatalogStore
}

func (s *catalogService) UpsertItems(ctx context.Context, req *recsysv1.UpsertItemsRequest) (*recsysv1.UpsertItemsResponse, error) {
	items := make([]catalog.Item, len(req.GetItems()))
	for i, it := range req.GetItems() {
		items[i] = catalog.Item{
			ID:        it.GetItemId(),
			Category:  it.GetCategory(),
			Price:     it.GetPrice(),
			Available: it.GetAvailable(),
		}
		if ts := it.GetCreatedAt(); ts != nil {
			items[i].CreatedAt = ts.AsTime()
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
	p := &recsysv1.Item{ItemId: it.ID, Category: it.Category, Price: it.Price, Available: it.Available}
	if !it.CreatedAt.IsZero() {
		p.CreatedAt = timestamppb.New(it.CreatedAt)
	}
	return p
}
