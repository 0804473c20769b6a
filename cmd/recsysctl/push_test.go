package main

import (
	"flag"
	"io"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/recsys-dev/recsys/internal/cli"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

func TestPushRequest(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		want    *recsysv1.BatchRecommendRequest
		wantErr bool
	}{
		{"users", []string{"--users", "u1, u2", "--count", "3", "--min-score", "0.5", "--dedup-window", "24h", "--exclude", "x"},
			&recsysv1.BatchRecommendRequest{UserIds: []string{"u1", "u2"}, Count: 3, MinScore: proto.Float32(0.5),
				DedupWindow: durationpb.New(24 * time.Hour), ExcludeItemIds: []string{"x"}}, false},
		{"segment", []string{"--segment", "dormant", "--min-spend", "100", "--max-users", "50"},
			&recsysv1.BatchRecommendRequest{Count: 5, Segment: &recsysv1.SegmentSelector{
				Lifecycle: recsysv1.Lifecycle_LIFECYCLE_DORMANT, MinSpend: 100, MaxUsers: 50}}, false},
		{"any segment", []string{"--segment", "any", "--min-purchases-per-30d", "2"},
			&recsysv1.BatchRecommendRequest{Count: 5, Segment: &recsysv1.SegmentSelector{MinPurchasesPer_30D: 2}}, false},
		{"neither", []string{"--count", "3"}, nil, true},
		{"both", []string{"--users", "u", "--segment", "new"}, nil, true},
		{"unknown segment", []string{"--segment", "vip"}, nil, true},
		{"bad min score", []string{"--users", "u", "--min-score", "high"}, nil, true},
		{"negative count", []string{"--users", "u", "--count", "-1"}, nil, true},
		{"campaign", []string{"--users", "u", "--count", "0", "--channel", "email", "--campaign", "spring", "--holdout-share", "0.1",
			"--max-per-brand", "2", "--max-per-seller", "1"},
			&recsysv1.BatchRecommendRequest{UserIds: []string{"u"}, Channel: recsysv1.PushChannel_PUSH_CHANNEL_EMAIL,
				CampaignId: "spring", HoldoutShare: 0.1, MaxPerBrand: 2, MaxPerSeller: 1}, false},
		{"unknown channel", []string{"--users", "u", "--channel", "fax"}, nil, true},
	} {
		fs := flag.NewFlagSet("push", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var p pushFlags
		p.register(fs)
		var got *recsysv1.BatchRecommendRequest
		_, err := cli.Parse(fs, tc.args)
		if err == nil {
			got, err = p.request()
		}
		if (err != nil) != tc.wantErr || !proto.Equal(got, tc.want) {
			t.Errorf("%s: got %v, %v; want %v (error %v)", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}
