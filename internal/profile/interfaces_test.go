package profile_test

import (
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/retrain"
)

// The interfaces profile's types are used through, declared by the packages
// that use them; checked here, beside the implementations, so that no
// consumer imports profile for the check alone.
var (
	_ recommend.TrendingSource = (*profile.Store)(nil)
	_ recommend.PushProfiles   = (*profile.Store)(nil)
	_ retrain.EventReader      = (*profile.Store)(nil)
)
