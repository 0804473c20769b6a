package daemon

import (
	"time"

	"github.com/recsys-dev/recsys/internal/attribution"
	"github.com/recsys-dev/recsys/internal/catalog"
	"github.com/recsys-dev/recsys/internal/coalesce"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/profile"
	"github.com/recsys-dev/recsys/internal/pushsched"
	"github.com/recsys-dev/recsys/internal/recommend"
	"github.com/recsys-dev/recsys/internal/redisconn"
	"github.com/recsys-dev/recsys/internal/server"
)

// Defaults of Config that belong to the daemon itself; the others are the
// defaults of the packages the daemon configures (profile, recommend,
// attribution, coalesce, server, redisconn, catalog), named there.
const (
	DefaultGRPCAddr       = "127.0.0.1:50051"
	DefaultMetricsAddr    = "127.0.0.1:9090"
	DefaultTokensReload   = 30 * time.Second
	DefaultDrainTimeout   = 20 * time.Second
	DefaultPopularRefresh = 5 * time.Second
	// DefaultTrendingRefresh is longer than the popular list's: the
	// trending list compares rates over hours, and computing it costs Redis
	// time in proportion to the items active in the last 6 hours (about a
	// tenth of a second with 100,000 of them), during which every other
	// command, profile loads included, waits.
	DefaultTrendingRefresh = time.Minute
	DefaultCatalogSync     = 500 * time.Millisecond
	DefaultModelPoll       = 5 * time.Second
	DefaultReadyCheck      = time.Second
	DefaultRotateAfter     = 3
	DefaultExploreShare    = 0.1
	DefaultArrivalsRefresh = 30 * time.Second
	DefaultColdSource      = "popular"
)

// NewConfig returns the configuration recsysd starts with when no flag is
// given: every default, named once, in the shape of etcd's embed.NewConfig.
// recsysd registers its flags with these values as their defaults, so a
// default is written in one place. (The zero Config, which tests use, means
// the same wherever zero means "default"; it differs where zero means "off":
// no /metrics, no coalescing.)
func NewConfig() Config {
	w := event.DefaultWeighting()
	return Config{
		GRPCAddr:         DefaultGRPCAddr,
		MetricsAddr:      DefaultMetricsAddr,
		RedisDialTimeout: redisconn.DefaultDialTimeout,
		RedisTimeout:     redisconn.DefaultIOTimeout,
		RedisMaxRetries:  redisconn.DefaultMaxRetries,
		ProfileBudget:    DefaultProfileBudget,
		Prefix:           profile.DefaultPrefix,
		Profile: profile.Config{
			HistoryCap:   profile.DefaultHistoryCap,
			PurchasedCap: profile.DefaultPurchasedCap,
			UserTTL:      profile.DefaultUserTTL,
			SeenCap:      profile.DefaultSeenCap,
			// How long a NOT_INTERESTED dismissal holds.
			NotInterestedTTL: profile.DefaultNotInterestedTTL,
		},
		Weighting:        w,
		Limits:           server.Limits{MaxBatch: server.DefaultMaxBatch},
		TokensReload:     DefaultTokensReload,
		MaxRecvMsgBytes:  server.DefaultMaxRecvMsgBytes,
		MaxConnectionAge: server.DefaultKeepalive().MaxConnectionAge,
		DrainTimeout:     DefaultDrainTimeout,
		PopularRefresh:   DefaultPopularRefresh,
		TrendingRefresh:  DefaultTrendingRefresh,
		CatalogSync:      DefaultCatalogSync,
		ModelPoll:        DefaultModelPoll,
		ReadyCheck:       DefaultReadyCheck,
		Shop: ShopConfig{
			RotateAfter:          DefaultRotateAfter,
			RotateWindow:         recommend.DefaultRotateWindow,
			ExploreShare:         DefaultExploreShare,
			NewItemAge:           recommend.DefaultNewItemAge,
			NewItemMaxPopularity: recommend.DefaultNewItemMaxPopularity,
			ArrivalsRefresh:      DefaultArrivalsRefresh,
			ColdSource:           DefaultColdSource,
			RulesPoll:            catalog.DefaultRulesPoll,
		},
		Segments: profile.SegmentConfig{
			NewAge:    profile.DefaultSegmentNewAge,
			ActiveAge: profile.DefaultSegmentActiveAge,
			Window:    profile.DefaultSegmentWindow,
		},
		PushDedupWindow: recommend.DefaultPushDedupWindow,
		Push: pushsched.Config{
			MemoryBudget:     pushsched.DefaultMemoryBudget,
			StreamsPerCaller: pushsched.DefaultStreamsPerCaller,
			Workers:          pushsched.DefaultWorkers,
			Counts:           pushsched.DefaultChannelCounts,
		},
		Campaigns: pushsched.CampaignConfig{
			TTL:        pushsched.DefaultCampaignTTL,
			MaxMembers: pushsched.DefaultCampaignMaxMembers,
		},
		Attribution: attribution.Config{
			Window:     attribution.DefaultWindow,
			PageWindow: attribution.DefaultPageWindow,
			PerUserCap: attribution.DefaultPerUserCap,
		},
		IndexMinItems:    recommend.DefaultIndexMinItems,
		MaxServingModels: DefaultMaxServingModels,
		Coalesce: coalesce.Config{
			MaxBlock:   coalesce.DefaultMaxBlock,
			BlockBytes: coalesce.DefaultBlockMiB << 20,
		},
	}
}
