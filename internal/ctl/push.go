package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

const pushUsage = "usage: recsysctl push --users u1,u2 | --segment new|active|dormant|any " +
	"[--count 5] [--min-score X] [--dedup-window 168h] [--exclude a,b] [--max-per-category N] " +
	"[--min-purchases-per-30d F] [--min-spend F] [--max-users N]"

// PushRequest builds a BatchRecommend request from `recsysctl push` flags.
func PushRequest(args []string, stderr io.Writer) (*recsysv1.BatchRecommendRequest, error) {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	users := fs.String("users", "", "comma-separated user ids")
	segment := fs.String("segment", "", "select users by segment: new, active, dormant or any")
	count := fs.Int("count", 5, "items per user")
	minScore := fs.String("min-score", "", "least model score of an item (empty: none)")
	dedup := fs.Duration("dedup-window", 0, "leave out items pushed within this (0: the server's default)")
	exclude := fs.String("exclude", "", "comma-separated item ids no user gets")
	perCategory := fs.Int("max-per-category", 0, "items of one category per user (0: the server's default)")
	minFreq := fs.Float64("min-purchases-per-30d", 0, "segment: least purchases per 30 days")
	minSpend := fs.Float64("min-spend", 0, "segment: least spend in the segment window")
	maxUsers := fs.Int("max-users", 0, "segment: stop after this many users (0: all)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != 0 || (*users == "") == (*segment == "") {
		return nil, errors.New(pushUsage)
	}
	if *count < 1 || *count > math.MaxInt32 || *perCategory < 0 || *perCategory > math.MaxInt32 ||
		*maxUsers < 0 || *maxUsers > math.MaxInt32 {
		return nil, errors.New(pushUsage)
	}
	req := &recsysv1.BatchRecommendRequest{
		UserIds:        splitList(*users),
		Count:          int32(*count),
		ExcludeItemIds: splitList(*exclude),
		MaxPerCategory: int32(*perCategory),
	}
	if *minScore != "" {
		v, err := strconv.ParseFloat(*minScore, 32)
		if err != nil {
			return nil, fmt.Errorf("--min-score: %w", err)
		}
		f := float32(v)
		req.MinScore = &f
	}
	if *dedup != 0 {
		req.DedupWindow = durationpb.New(*dedup)
	}
	if *segment != "" {
		sel := &recsysv1.SegmentSelector{MinPurchasesPer_30D: *minFreq, MinSpend: *minSpend, MaxUsers: int32(*maxUsers)}
		switch *segment {
		case "any":
		case "new":
			sel.Lifecycle = recsysv1.Lifecycle_LIFECYCLE_NEW
		case "active":
			sel.Lifecycle = recsysv1.Lifecycle_LIFECYCLE_ACTIVE
		case "dormant":
			sel.Lifecycle = recsysv1.Lifecycle_LIFECYCLE_DORMANT
		default:
			return nil, fmt.Errorf("--segment %q: want new, active, dormant or any", *segment)
		}
		req.Segment = sel
	}
	return req, nil
}

// PushCommand runs `recsysctl push`: BatchRecommend, printing one JSON
// object per user and line (JSON Lines), as the server streams them.
func PushCommand(ctx context.Context, c *Client, args []string, stdout, stderr io.Writer) error {
	req, err := PushRequest(args, stderr)
	if err != nil {
		return err
	}
	stream, err := c.Rec.BatchRecommend(ctx, req)
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
		if _, err := fmt.Fprintf(stdout, "%s\n", b); err != nil {
			return err
		}
	}
}
