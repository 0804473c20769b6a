package pushsched_test

import (
	"github.com/recsys-dev/recsys/internal/pushsched"
	"github.com/recsys-dev/recsys/internal/server"
)

// Consumers' interfaces (see internal/layering).
var (
	_ server.Pusher = (*pushsched.Scheduler)(nil)
)
