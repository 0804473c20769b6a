package registry_test

import (
	"github.com/recsys-dev/recsys/internal/registry"
	"github.com/recsys-dev/recsys/internal/server"
)

// Consumers' interfaces (see internal/layering).
var (
	_ server.ModelPinner = (*registry.Redis)(nil)
	_ server.ModelPinner = (*registry.Dir)(nil)
)
