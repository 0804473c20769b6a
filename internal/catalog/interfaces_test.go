package catalog_test

import (
	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/server"
)

// The interfaces catalog's types are used through, declared by the packages
// that use them; checked here, beside the implementations, so that no
// consumer imports catalog for the check alone.
var (
	_ server.ShopRules     = (*catalog.Store)(nil)
	_ server.SearchMatcher = (*catalog.SearchIndex)(nil)
	_ recommend.Rules      = (*catalog.RulesCache)(nil)
	_ recommend.Catalog    = (*catalog.Cache)(nil)
)
