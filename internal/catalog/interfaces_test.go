package catalog_test

import (
	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/server"
)

// Consumers' interfaces (see internal/layering).
var (
	_ server.ShopRules     = (*catalog.Store)(nil)
	_ server.SearchMatcher = (*catalog.SearchIndex)(nil)
	_ recommend.Rules      = (*catalog.RulesCache)(nil)
	_ recommend.Catalog    = (*catalog.Cache)(nil)
)
