package daemon

import (
	"testing"

	"github.com/recsys-dev/recsys/internal/recommend"
)

// TestNewConfigAgreesWithDefaults: where the zero Config means "the
// default", NewConfig states the same value.
func TestNewConfigAgreesWithDefaults(t *testing.T) {
	var zero Config
	zero.defaults()
	n := NewConfig()
	n.defaults()
	if zero.Shop.NewItemMaxPopularity == 0 { // recommend.NewArrivals's default
		zero.Shop.NewItemMaxPopularity = recommend.DefaultNewItemMaxPopularity
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"Prefix", n.Prefix, zero.Prefix},
		{"Weighting", n.Weighting, zero.Weighting},
		{"ProfileBudget", n.ProfileBudget, zero.ProfileBudget},
		{"DrainTimeout", n.DrainTimeout, zero.DrainTimeout},
		{"PopularRefresh", n.PopularRefresh, zero.PopularRefresh},
		{"TrendingRefresh", n.TrendingRefresh, zero.TrendingRefresh},
		{"CatalogSync", n.CatalogSync, zero.CatalogSync},
		{"ModelPoll", n.ModelPoll, zero.ModelPoll},
		{"ReadyCheck", n.ReadyCheck, zero.ReadyCheck},
		{"TokensReload", n.TokensReload, zero.TokensReload},
		{"Shop", n.Shop, zero.Shop},
		{"Profile", n.Profile.WithDefaults().UserTTL, zero.Profile.WithDefaults().UserTTL},
		{"Profile.HistoryCap", n.Profile.WithDefaults().HistoryCap, zero.Profile.WithDefaults().HistoryCap},
		{"Profile.PurchasedCap", n.Profile.WithDefaults().PurchasedCap, zero.Profile.WithDefaults().PurchasedCap},
		{"Profile.SeenCap", n.Profile.WithDefaults().SeenCap, zero.Profile.WithDefaults().SeenCap},
		{"Segments", n.Segments.WithDefaults(), zero.Segments.WithDefaults()},
	} {
		if c.got != c.want {
			t.Errorf("%s: NewConfig %v, zero Config %v", c.name, c.got, c.want)
		}
	}
}
