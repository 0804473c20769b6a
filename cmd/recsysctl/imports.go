package main

import (
	"context"
	"fmt"

	"github.com/recsys-dev/recsys/internal/cli"
	"github.com/recsys-dev/recsys/internal/dataset"
	"github.com/recsys-dev/recsys/internal/ingest"
)

// runEventsImport sends an events file in batches, progress on stderr, and
// prints what happened as JSON on stdout. Rejected rows make the exit code
// 4 unless --allow-rejects.
func runEventsImport(ctx context.Context, x *invocation) error {
	formats := fmt.Sprint(dataset.Formats())
	format := x.fs.String("format", "", "format of the file, one of "+formats+" (empty: detect)")
	allow := x.fs.Bool("allow-rejects", false, "exit 0 even when rows were rejected")
	args, err := x.exactly(1)
	if err != nil {
		return err
	}
	f, err := dataset.ParseFormat(*format)
	if err != nil {
		return cli.Usagef("--format: %w", err)
	}
	c, err := x.client()
	if err != nil {
		return err
	}
	st, err := ingest.ImportEvents(ctx, c, args[0], f, x.conn.timeout, x.stderr)
	return x.importResult(st, err, *allow)
}

// runCatalogImport sends a catalog CSV in batches.
func runCatalogImport(ctx context.Context, x *invocation) error {
	args, err := x.exactly(1)
	if err != nil {
		return err
	}
	c, err := x.client()
	if err != nil {
		return err
	}
	st, err := ingest.ImportCatalog(ctx, c, args[0], x.conn.timeout, x.stderr)
	return x.importResult(st, err, false)
}

// importResult prints the import's summary (also after a failure: what was
// sent stays sent) and says how the command ends.
func (x *invocation) importResult(st ingest.ImportStats, err error, allowRejects bool) error {
	if perr := ingest.PrintStats(x.stdout, st); perr != nil && err == nil {
		err = perr
	}
	if err == nil && st.Rejected > 0 && !allowRejects {
		err = cli.WithExit(cli.ExitRejected, fmt.Errorf("%d of %d rows rejected (see \"errors\" in the summary; --allow-rejects to accept)", st.Rejected, st.Rows))
	}
	return err
}
