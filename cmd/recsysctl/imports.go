package main

import (
	"io"
	"time"

	"context"
	"github.com/recsys-dev/recsys/client"

	"github.com/recsys-dev/recsys/internal/ingest"
)

func runEventsImport(ctx context.Context, x *invocation) error {
	return runImport(ctx, x, ingest.ImportEvents)
}

func runCatalogImport(ctx context.Context, x *invocation) error {
	return runImport(ctx, x, ingest.ImportCatalog)
}

// runImport sends a file in batches, progress on stderr, and prints what
// happened as JSON on stdout.
func runImport(ctx context.Context, x *invocation, imp func(context.Context, *client.Client, string, time.Duration, io.Writer) (ingest.ImportStats, error)) error {
	args, err := x.exactly(1)
	if err != nil {
		return err
	}
	c, err := x.client()
	if err != nil {
		return err
	}
	st, err := imp(ctx, c, args[0], x.conn.timeout, x.stderr)
	if perr := ingest.PrintStats(x.stdout, st); perr != nil && err == nil {
		err = perr
	}
	return err
}
