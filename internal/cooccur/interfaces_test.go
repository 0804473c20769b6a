package cooccur_test

import (
	"github.com/recsys-dev/recsys/internal/cooccur"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/retrain"
)

// Consumers' interfaces (see internal/layering).
var (
	_ recommend.BoughtLists = (*cooccur.Store)(nil)
	_ retrain.ListWriter    = (*cooccur.Store)(nil)
)
