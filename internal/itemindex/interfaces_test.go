package itemindex_test

import (
	"github.com/recsys-dev/recsys/internal/blend"
	"github.com/recsys-dev/recsys/internal/itemindex"
)

// Consumers' interfaces (see internal/layering).
var (
	_ blend.MFSearch = (*itemindex.Search)(nil)
)
