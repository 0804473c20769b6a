// Command recsysd is the recommendation server: gRPC API on --grpc-addr,
// Prometheus metrics on --metrics-addr, profiles in Redis (--redis-addr; an
// embedded in-process store when empty, for the demo only), and models from
// the registry, hot-swapped as they are published.
//
// Every flag can also be set by an environment variable: --redis-addr by
// RECSYS_REDIS_ADDR, and so on.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/recsys-dev/recsys/internal/daemon"
	"github.com/recsys-dev/recsys/internal/envflag"
	"github.com/recsys-dev/recsys/internal/event"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "recsysd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, logOpts, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	log, err := logOpts.logger(stderr)
	if err != nil {
		return err
	}
	d, err := daemon.New(cfg, log)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

type logOptions struct{ level, format string }

func (o logOptions) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(o.level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch o.format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: want json or text, got %q", o.format)
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (daemon.Config, logOptions, error) {
	var c daemon.Config
	var lo logOptions
	w := event.DefaultWeighting()
	fs := flag.NewFlagSet("recsysd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.GRPCAddr, "grpc-addr", ":50051", "gRPC listen address")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", ":9090", "HTTP address of /metrics (empty: off)")
	fs.StringVar(&c.RedisAddr, "redis-addr", "", "Redis address, or comma-separated cluster seeds; empty: embedded demo store")
	fs.StringVar(&c.RedisPassword, "redis-password", "", "Redis password")
	fs.IntVar(&c.RedisDB, "redis-db", 0, "Redis database number (not for clusters)")
	fs.StringVar(&c.Prefix, "prefix", "recsys", "prefix of every Redis key")
	fs.StringVar(&c.ModelsDir, "models-dir", "", "serve models from this directory instead of the Redis registry")
	fs.StringVar(&lo.level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&lo.format, "log-format", "json", "json or text")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 20*time.Second, "how long SIGTERM waits for in-flight RPCs")
	fs.IntVar(&c.Profile.HistoryCap, "history-cap", 200, "recent events kept per user")
	fs.IntVar(&c.Profile.PurchasedCap, "purchased-cap", 500, "purchased items kept per user")
	fs.DurationVar(&c.Profile.UserTTL, "user-ttl", 180*24*time.Hour, "TTL of a user's keys, refreshed on activity")
	fs.DurationVar(&w.HalfLife, "half-life", w.HalfLife, "event weight half-life")
	fs.Float64Var(&w.View, "weight-view", w.View, "weight of a view")
	fs.Float64Var(&w.AddToCart, "weight-cart", w.AddToCart, "weight of an add-to-cart")
	fs.Float64Var(&w.Purchase, "weight-purchase", w.Purchase, "weight of a purchase")
	fs.DurationVar(&c.PopularRefresh, "popular-refresh", 5*time.Second, "how often the popular list is re-read")
	fs.DurationVar(&c.CatalogSync, "catalog-sync", 500*time.Millisecond, "how often catalog changes are applied")
	fs.DurationVar(&c.ModelPoll, "model-poll", 5*time.Second, "model registry polling interval (besides pub/sub)")
	fs.IntVar(&c.Limits.MaxBatch, "max-batch", 1000, "events or items per write request")
	fs.IntVar(&c.Shop.MaxPerCategory, "max-per-category", 0, "default cap of items per category in an answer (0: none)")
	fs.IntVar(&c.Shop.RotateAfter, "rotate-after", 3, "impressions without a click that rotate an item down (negative: off)")
	fs.DurationVar(&c.Shop.RotateWindow, "rotate-window", 24*time.Hour, "window in which impressions count for rotation")
	fs.Float64Var(&c.Shop.ExploreShare, "explore-share", 0.1, "share of slots for new items (negative: off)")
	fs.DurationVar(&c.Shop.NewItemAge, "new-item-age", 14*24*time.Hour, "items created this recently are new")
	fs.Float64Var(&c.Shop.NewItemMaxPopularity, "new-item-max-popularity", 10, "decayed popularity below which a new item gets exploration slots")
	fs.StringVar(&c.Shop.ColdSource, "cold-source", "popular", "what users without a personalized answer get: popular or trending")
	fs.DurationVar(&c.Shop.RulesPoll, "rules-poll", 250*time.Millisecond, "how often blocklist and category changes are checked")
	if err := fs.Parse(args); err != nil {
		return c, lo, err
	}
	if fs.NArg() > 0 {
		return c, lo, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := envflag.Fill(fs, "RECSYS", getenv); err != nil {
		return c, lo, err
	}
	c.Weighting = w
	return c, lo, nil
}
