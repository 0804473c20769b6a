package cooccur_test

import (
	"github.com/recsys-dev/recsys/internal/cooccur"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/retrain"
)

// The interfaces cooccur's types are used through, declared by the packages
// that use them; checked here, beside the implementations, so that no
// consumer imports cooccur for the check alone.
var (
	_ recommend.BoughtLists = (*cooccur.Store)(nil)
	_ retrain.ListWriter    = (*cooccur.Store)(nil)
)
