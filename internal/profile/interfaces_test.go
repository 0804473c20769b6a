package profile_test

import (
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/retrain"
)

// Consumers' interfaces (see internal/layering).
var (
	_ recommend.TrendingSource = (*profile.Store)(nil)
	_ recommend.PushProfiles   = (*profile.Store)(nil)
	_ retrain.EventReader      = (*profile.Store)(nil)
)
