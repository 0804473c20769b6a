package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/cli"
	"github.com/recsys-dev/recsys/internal/content"
	"github.com/recsys-dev/recsys/internal/dataset"
	"github.com/recsys-dev/recsys/internal/eval"
	"github.com/recsys-dev/recsys/internal/event"
)

// coldStartFlags are eval's cold-start options.
type coldStartFlags struct {
	on       bool
	items    string
	k        int
	fraction float64
	lambda   float64
}

func (c *coldStartFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.on, "cold-start", false, "instead: recall@K of new items (first seen after a time cut-off) placed by the content map, next to category popularity (needs --items)")
	fs.StringVar(&c.items, "items", "", "with --cold-start: item descriptions (a catalog CSV, or MovieLens u.item)")
	fs.IntVar(&c.k, "cold-start-k", 20, "with --cold-start: the cut-off K of recall@K")
	fs.Float64Var(&c.fraction, "cold-start-test", 0.2, "with --cold-start: share of the events, by time, after the cut-off")
	fs.Float64Var(&c.lambda, "content-lambda", 1, "with --cold-start: ridge penalty of the content map")
}

// run evaluates cold start on the events of the common options' source.
func (c *coldStartFlags) run(ctx context.Context, ec evalCommand, asJSON bool, stdout io.Writer, log *slog.Logger) error {
	if c.items == "" {
		return cli.Usagef("--cold-start needs --items FILE (a catalog CSV or MovieLens u.item)")
	}
	items := map[string]content.Item{}
	if err := dataset.ReadItemsFile(c.items, func(id string, it content.Item) error { items[id] = it; return nil }); err != nil {
		return err
	}
	var rdb redis.UniversalClient
	if ec.job.RedisAddr != "" {
		var err error
		if rdb, err = ec.redis(); err != nil {
			return err
		}
		defer rdb.Close()
	}
	src, err := ec.source(rdb, log)
	if err != nil {
		return err
	}
	var evs []event.Event
	if err := src(ctx, func(e event.Event) error { evs = append(evs, e); return nil }); err != nil {
		return err
	}
	res, err := eval.ColdStart(ctx, evs, func(id string) (content.Item, bool) { it, ok := items[id]; return it, ok }, eval.ColdStartOptions{
		K: c.k, TestFraction: c.fraction, Hyper: ec.job.Retrain.Hyper, Weighting: ec.job.Retrain.Weighting, Content: content.Options{Lambda: c.lambda}, Workers: ec.job.Retrain.Workers,
	})
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "cold start: cut-off %s; train %d events, %d items; test %d events\n",
		res.Cutoff.Format(time.RFC3339), res.TrainEvents, res.TrainItems, res.TestEvents)
	fmt.Fprintf(stdout, "new items ranked: %d (%d placed by the content map of %d features; %d undescribed left out); test users: %d\n\n",
		res.NewItems, res.PlacedItems, res.Features, res.Undescribed, res.Cases)
	fmt.Fprintf(stdout, "%-30s recall@%d\n", "method", res.K)
	for _, m := range res.Recall {
		fmt.Fprintf(stdout, "%-30s %.4f\n", m.Name, m.Recall)
	}
	return nil
}
