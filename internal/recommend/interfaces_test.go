package recommend_test

import (
	"github.com/recsys-dev/recsys/internal/pushsched"
	"github.com/recsys-dev/recsys/internal/recommend"
)

// Consumers' interfaces (see internal/layering).
var (
	_ pushsched.Pusher = (*recommend.Engine)(nil)
)
