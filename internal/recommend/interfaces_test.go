package recommend_test

import (
	"github.com/recsys-dev/recsys/internal/pushsched"
	"github.com/recsys-dev/recsys/internal/recommend"
)

// The interfaces recommend's types are used through, declared by the packages
// that use them; checked here, beside the implementations, so that no
// consumer imports recommend for the check alone.
var (
	_ pushsched.Pusher = (*recommend.Engine)(nil)
)
