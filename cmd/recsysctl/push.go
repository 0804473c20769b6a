package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/recsys-dev/recsys/internal/cli"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// pushFlags are the flags of `recsysctl push`.
type pushFlags struct {
	users, segment, minScore, exclude string
	count, perCategory, maxUsers      int
	perBrand, perSeller               int
	dedup                             time.Duration
	minFreq, minSpend                 float64
	campaign, channel                 string
	holdout                           float64
}

// pushChannels are --channel's values.
var pushChannels = map[string]recsysv1.PushChannel{
	"": recsysv1.PushChannel_PUSH_CHANNEL_UNSPECIFIED, "app_push": recsysv1.PushChannel_PUSH_CHANNEL_APP_PUSH,
	"email": recsysv1.PushChannel_PUSH_CHANNEL_EMAIL, "sms": recsysv1.PushChannel_PUSH_CHANNEL_SMS,
	"other": recsysv1.PushChannel_PUSH_CHANNEL_OTHER,
}

func (p *pushFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.users, "users", "", "comma-separated user ids")
	fs.StringVar(&p.segment, "segment", "", "select users by segment: new, active, dormant or any")
	fs.IntVar(&p.count, "count", 5, "items per user (0: the server's default for --channel)")
	fs.StringVar(&p.channel, "channel", "", "where the items are sent: app_push, email, sms or other")
	fs.StringVar(&p.campaign, "campaign", "", "the campaign id (its targeted and held-out users are stored)")
	fs.Float64Var(&p.holdout, "holdout-share", 0, "share of the campaign's users held out (0..0.5; needs --campaign)")
	fs.IntVar(&p.perBrand, "max-per-brand", 0, "items of one brand per user (0: the server's default)")
	fs.IntVar(&p.perSeller, "max-per-seller", 0, "items of one seller per user (0: the server's default)")
	fs.StringVar(&p.minScore, "min-score", "", "least model score of an item (empty: none)")
	fs.DurationVar(&p.dedup, "dedup-window", 0, "leave out items pushed within this (0: the server's default)")
	fs.StringVar(&p.exclude, "exclude", "", "comma-separated item ids no user gets")
	fs.IntVar(&p.perCategory, "max-per-category", 0, "items of one category per user (0: the server's default)")
	fs.Float64Var(&p.minFreq, "min-purchases-per-30d", 0, "segment: least purchases per 30 days")
	fs.Float64Var(&p.minSpend, "min-spend", 0, "segment: least spend in the segment window")
	fs.IntVar(&p.maxUsers, "max-users", 0, "segment: stop after this many users (0: all)")
}

// request builds the BatchRecommend request of the flags.
func (p *pushFlags) request() (*recsysv1.BatchRecommendRequest, error) {
	if (p.users == "") == (p.segment == "") {
		return nil, cli.Usagef("push: give --users or --segment, not both")
	}
	for _, n := range []int{p.count, p.perCategory, p.maxUsers, p.perBrand, p.perSeller} {
		if n < 0 || n > math.MaxInt32 {
			return nil, cli.Usagef("push: --count, --max-per-category, --max-per-brand, --max-per-seller and --max-users must not be negative")
		}
	}
	channel, ok := pushChannels[p.channel]
	if !ok {
		return nil, cli.Usagef("--channel %q: want app_push, email, sms or other", p.channel)
	}
	req := &recsysv1.BatchRecommendRequest{
		UserIds:        splitList(p.users),
		Count:          int32(p.count),
		ExcludeItemIds: splitList(p.exclude),
		MaxPerCategory: int32(p.perCategory),
		MaxPerBrand:    int32(p.perBrand),
		MaxPerSeller:   int32(p.perSeller),
		Channel:        channel,
		CampaignId:     p.campaign,
		HoldoutShare:   p.holdout,
	}
	if p.minScore != "" {
		v, err := strconv.ParseFloat(p.minScore, 32)
		if err != nil {
			return nil, cli.Usagef("--min-score: %w", err)
		}
		f := float32(v)
		req.MinScore = &f
	}
	if p.dedup != 0 {
		req.DedupWindow = durationpb.New(p.dedup)
	}
	if p.segment != "" {
		sel := &recsysv1.SegmentSelector{MinPurchasesPer_30D: p.minFreq, MinSpend: p.minSpend, MaxUsers: int32(p.maxUsers)}
		switch p.segment {
		case "any":
		case "new":
			sel.Lifecycle = recsysv1.Lifecycle_LIFECYCLE_NEW
		case "active":
			sel.Lifecycle = recsysv1.Lifecycle_LIFECYCLE_ACTIVE
		case "dormant":
			sel.Lifecycle = recsysv1.Lifecycle_LIFECYCLE_DORMANT
		default:
			return nil, cli.Usagef("--segment %q: want new, active, dormant or any", p.segment)
		}
		req.Segment = sel
	}
	return req, nil
}

// runPush runs BatchRecommend, printing one JSON object per user and line
// (JSON Lines) as the server streams them. The whole stream runs under
// --timeout (raise it for a large segment).
func runPush(ctx context.Context, x *invocation) error {
	var p pushFlags
	p.register(x.fs)
	if _, err := x.exactly(0); err != nil {
		return err
	}
	req, err := p.request()
	if err != nil {
		return err
	}
	c, err := x.client()
	if err != nil {
		return err
	}
	if x.conn.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, x.conn.timeout)
		defer cancel()
	}
	stream, err := c.Recommendations.BatchRecommend(ctx, req)
	if err != nil {
		return err
	}
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		b, err := protojson.Marshal(m)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(x.stdout, "%s\n", b); err != nil {
			return err
		}
	}
}
