package pushsched_test

import (
	"github.com/recsys-dev/recsys/internal/pushsched"
	"github.com/recsys-dev/recsys/internal/server"
)

// The interfaces pushsched's types are used through, declared by the packages
// that use them; checked here, beside the implementations, so that no
// consumer imports pushsched for the check alone.
var (
	_ server.Pusher = (*pushsched.Scheduler)(nil)
)
