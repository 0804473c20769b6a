package main

import (
	"context"
	"fmt"
	"time"

	"github.com/recsys-dev/recsys/internal/cli"
	"github.com/recsys-dev/recsys/internal/demo"
	"github.com/recsys-dev/recsys/internal/ingest"
	"github.com/recsys-dev/recsys/internal/synth"
)

// runGenerate writes a synthetic shop as the events CSV (and optionally its
// catalog CSV).
func runGenerate(ctx context.Context, x *invocation) error {
	var cfg synth.Config
	fs := x.fs
	fs.IntVar(&cfg.Users, "users", 1000, "users")
	fs.IntVar(&cfg.Items, "items", 500, "items")
	fs.IntVar(&cfg.Events, "events", 20000, "events to generate (approximately)")
	fs.IntVar(&cfg.Categories, "categories", 20, "item categories")
	seed := fs.Uint64("seed", 1, "random seed; the same seed writes the same shop")
	out := fs.String("out", "-", "events CSV to write (- for stdout)")
	catalogOut := fs.String("catalog-out", "", "also write the catalog CSV here")
	start := fs.String("start", "", "first event time, RFC 3339 (default 2024-01-01)")
	end := fs.String("end", "", "end of the period, RFC 3339 (default start + 90 days)")
	if _, err := x.exactly(0); err != nil {
		return err
	}
	cfg.Seed = *seed
	for _, t := range []struct {
		s    string
		dst  *time.Time
		name string
	}{{*start, &cfg.Start, "--start"}, {*end, &cfg.End, "--end"}} {
		if t.s == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, t.s)
		if err != nil {
			return cli.Usagef("%s: %w", t.name, err)
		}
		*t.dst = v
	}
	n, err := ingest.Generate(ctx, cfg, *out, *catalogOut, x.stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(x.stderr, "generated %d events for %d users over %d items\n", n, cfg.Users, cfg.Items)
	return nil
}

// runDemo runs the demo (internal/demo).
func runDemo(ctx context.Context, x *invocation) error {
	var c demo.Config
	fs := x.fs
	fs.IntVar(&c.Users, "users", 3000, "shoppers")
	fs.IntVar(&c.Items, "items", 1500, "items")
	fs.IntVar(&c.Events, "events", 150000, "events")
	fs.Uint64Var(&c.Seed, "seed", 7, "seed of the synthetic shop")
	fs.IntVar(&c.Factors, "factors", 32, "latent factors")
	fs.IntVar(&c.Iterations, "iterations", 12, "ALS iterations")
	fs.StringVar(&c.GRPCAddr, "grpc-addr", "127.0.0.1:0", "where the demo's recsysd listens")
	fs.StringVar(&c.HTTPAddr, "http-addr", "", "also serve the API as HTTP/JSON here (127.0.0.1:8080 for the README's curl examples)")
	fs.BoolVar(&c.KeepServing, "keep-serving", false, "keep recsysd running after the demo (Ctrl-C to stop)")
	if _, err := x.exactly(0); err != nil {
		return err
	}
	return demo.Run(ctx, c, x.stdout, x.stderr)
}
