package itemindex_test

import (
	"github.com/recsys-dev/recsys/internal/blend"
	"github.com/recsys-dev/recsys/internal/itemindex"
)

// The interfaces itemindex's types are used through, declared by the packages
// that use them; checked here, beside the implementations, so that no
// consumer imports itemindex for the check alone.
var (
	_ blend.MFSearch = (*itemindex.Search)(nil)
)
