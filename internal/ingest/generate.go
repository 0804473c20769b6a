package ingest

import (
	"bufio"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/recsys-dev/recsys/internal/dataset"
	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/synth"
)

// GenerateCommand runs `recsysctl generate`: a synthetic shop written as the
// events CSV (and optionally its catalog CSV).
func GenerateCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg synth.Config
	var out, catalogOut, start, end string
	fs.IntVar(&cfg.Users, "users", 1000, "users")
	fs.IntVar(&cfg.Items, "items", 500, "items")
	fs.IntVar(&cfg.Events, "events", 20000, "events to generate (approximately)")
	fs.IntVar(&cfg.Categories, "categories", 20, "item categories")
	seed := fs.Uint64("seed", 1, "random seed; the same seed writes the same shop")
	fs.StringVar(&out, "out", "-", "events CSV to write (- for stdout)")
	fs.StringVar(&catalogOut, "catalog-out", "", "also write the catalog CSV here")
	fs.StringVar(&start, "start", "", "first event time, RFC 3339 (default 2024-01-01)")
	fs.StringVar(&end, "end", "", "end of the period, RFC 3339 (default start + 90 days)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("generate: unexpected arguments %q", fs.Args())
	}
	cfg.Seed = *seed
	for _, t := range []struct {
		s    string
		dst  *time.Time
		name string
	}{{start, &cfg.Start, "--start"}, {end, &cfg.End, "--end"}} {
		if t.s == "" {
			continue
		}
		v, err := time.Parse(time.RFC3339, t.s)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		*t.dst = v
	}
	n, err := Generate(ctx, cfg, out, catalogOut, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "generated %d events for %d users over %d items\n", n, cfg.Users, cfg.Items)
	return nil
}

// Generate writes a synthetic shop: its events to eventsPath ("-" =
// stdout) and, if catalogPath is set, its catalog there. It returns the
// number of events.
func Generate(ctx context.Context, cfg synth.Config, eventsPath, catalogPath string, stdout io.Writer) (int64, error) {
	shop, err := synth.New(cfg)
	if err != nil {
		return 0, err
	}
	if catalogPath != "" {
		if err := writeFile(catalogPath, stdout, func(w io.Writer) error { return WriteCatalogCSV(w, shop.Items()) }); err != nil {
			return 0, err
		}
	}
	var n int64
	err = writeFile(eventsPath, stdout, func(w io.Writer) error {
		cw := dataset.NewCSVWriter(w)
		if err := shop.Generate(ctx, func(e event.Event) error { n++; return cw.Write(e) }); err != nil {
			return err
		}
		return cw.Flush()
	})
	return n, err
}

// writeFile writes through fn to path ("-" = stdout), buffered, and reports
// a failed close.
func writeFile(path string, stdout io.Writer, fn func(io.Writer) error) (err error) {
	if path == "-" {
		bw := bufio.NewWriter(stdout)
		if err := fn(bw); err != nil {
			return err
		}
		return bw.Flush()
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<16)
	if err := fn(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// WriteCatalogCSV writes items in the format ReadCatalogCSV reads.
func WriteCatalogCSV(w io.Writer, items []synth.Item) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"item_id", "category", "price", "available", "created_at"}); err != nil {
		return err
	}
	for _, it := range items {
		if err := cw.Write([]string{it.ID, it.Category, strconv.FormatFloat(it.Price, 'f', 2, 64),
			strconv.FormatBool(it.Available), it.CreatedAt.UTC().Format(time.RFC3339)}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
