// Package ingest moves shop data into a running recsysd through its public
// client: files of events (any format package dataset reads) and catalog
// CSV files, sent in batches with retries, rejected rows counted and named;
// and the synthetic shop written as those files.
package ingest

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/recsys-dev/recsys/client"
	"github.com/recsys-dev/recsys/internal/cli"
	"github.com/recsys-dev/recsys/internal/dataset"
	"github.com/recsys-dev/recsys/internal/event"
	recsysv1 "github.com/recsys-dev/recsys/proto/recsys/v1"
)

// ImportStats is what an import reports on stdout.
type ImportStats struct {
	File       string   `json:"file"`
	Rows       int64    `json:"rows"`
	Sent       int64    `json:"sent"`
	Accepted   int64    `json:"accepted"`
	Duplicates int64    `json:"duplicates"`
	Rejected   int64    `json:"rejected"`
	Errors     []string `json:"errors,omitempty"` // the first rejections
	Seconds    float64  `json:"seconds"`
}

const (
	importBatch     = 500
	maxReportErrors = 20
)

// ImportEvents reads an events file (the events CSV, or any format the
// dataset package detects) and sends it in batches. Rows the reader cannot
// parse, and events the server refuses, are counted and reported, not sent
// again; the rest of the file goes on. Event ids make a re-import idempotent.
//
// format names the file's format (empty: detect it). Progress goes to
// progress (see cli.Progress: a bar on a terminal, a line every few seconds
// with the total and ETA elsewhere).
func ImportEvents(ctx context.Context, c *client.Client, path string, format dataset.Format, rpcTimeout time.Duration, progress io.Writer) (ImportStats, error) {
	st := ImportStats{File: path}
	start := time.Now()
	imp := &importer{c: c, timeout: rpcTimeout, st: &st, progress: cli.NewProgress(progress, "events", csvRows(path, format)), start: start}
	rs, err := dataset.ReadFile(ctx, path, format, dataset.Options{SkipBadRows: true, MaxErrors: maxReportErrors}, func(e event.Event) error {
		imp.batch = append(imp.batch, toProtoEvent(e))
		if len(imp.batch) == importBatch {
			return imp.flush(ctx)
		}
		return nil
	})
	if err == nil {
		err = imp.flush(ctx)
	}
	st.Rows = rs.Rows
	st.Rejected += rs.Skipped
	for _, e := range rs.FirstErrors {
		st.addError(e.Error())
	}
	st.Seconds = time.Since(start).Seconds()
	imp.progress.Done(st.Sent+st.Rejected, imp.detail())
	return st, err
}

// csvRows counts the rows of an events CSV (its lines but the header), the
// total progress reports; 0 (unknown) for other formats and compressed
// files. Reading the file twice costs little next to sending it.
func csvRows(path string, format dataset.Format) int64 {
	if format == "" {
		format, _ = dataset.Detect(path)
	}
	if format != dataset.CSV || strings.HasSuffix(path, ".gz") {
		return 0
	}
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var lines int64
	buf := make([]byte, 1<<16)
	for {
		n, err := f.Read(buf)
		lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
		if err != nil {
			break
		}
	}
	return max(lines-1, 0)
}

func (im *importer) detail() string {
	return fmt.Sprintf("%d accepted, %d duplicates, %d rejected", im.st.Accepted, im.st.Duplicates, im.st.Rejected)
}

func (st *ImportStats) addError(msg string) {
	if len(st.Errors) < maxReportErrors {
		st.Errors = append(st.Errors, msg)
	}
}

// PrintStats writes v as indented JSON.
func PrintStats(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

type importer struct {
	c        *client.Client
	timeout  time.Duration
	batch    []*recsysv1.Event
	st       *ImportStats
	progress *cli.Progress
	start    time.Time
}

// badEvent finds the index of the event a validation error names.
var badEvent = regexp.MustCompile(`^events\[(\d+)\]`)

// flush sends the batch. An event the server refuses is dropped and
// reported and the rest is sent again; Unavailable is retried with backoff
// (safe: events are idempotent by id).
func (im *importer) flush(ctx context.Context) error {
	backoff := 200 * time.Millisecond
	for attempt := 0; len(im.batch) > 0; {
		rctx, cancel := context.WithTimeout(ctx, im.timeout)
		res, err := im.c.Events.RecordEvents(rctx, &recsysv1.RecordEventsRequest{Events: im.batch})
		cancel()
		if err == nil {
			im.st.Sent += int64(len(im.batch))
			im.st.Accepted += int64(res.GetAccepted())
			im.st.Duplicates += int64(res.GetDuplicates())
			im.batch = im.batch[:0]
			im.progress.Update(im.st.Sent+im.st.Rejected, im.detail())
			return nil
		}
		st, _ := status.FromError(err)
		switch st.Code() {
		case codes.InvalidArgument:
			m := badEvent.FindStringSubmatch(st.Message())
			if m == nil {
				return fmt.Errorf("server refused a batch: %w", err)
			}
			i, _ := strconv.Atoi(m[1])
			if i >= len(im.batch) {
				return fmt.Errorf("server refused a batch: %w", err)
			}
			im.st.Rejected++
			im.st.addError(fmt.Sprintf("event %s (user %q, item %q): %s", im.batch[i].GetEventId(),
				im.batch[i].GetUserId(), im.batch[i].GetItemId(), st.Message()))
			im.batch = append(im.batch[:i], im.batch[i+1:]...)
		case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded:
			attempt++
			if attempt > 5 {
				return fmt.Errorf("giving up after %d attempts: %w", attempt, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(backoff):
			}
			backoff *= 2
		default:
			return err
		}
	}
	return nil
}

func toProtoEvent(e event.Event) *recsysv1.Event {
	p := &recsysv1.Event{
		EventId:  e.ID,
		UserId:   e.UserID,
		ItemId:   e.ItemID,
		Type:     recsysv1.EventType(e.Type),
		Quantity: e.Quantity,
		Weight:   e.Weight,
	}
	if !e.Time.IsZero() {
		p.Timestamp = timestamppb.New(e.Time)
	}
	return p
}

// ImportCatalog reads a catalog CSV with the header
// item_id,category,price,available,created_at (any order; only item_id
// required; available defaults to true; created_at RFC 3339 or unix seconds)
// and upserts it in batches.
func ImportCatalog(ctx context.Context, c *client.Client, path string, rpcTimeout time.Duration, stderr io.Writer) (ImportStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return ImportStats{}, err
	}
	defer f.Close()
	start := time.Now()
	st := ImportStats{File: path}
	progress := cli.NewProgress(stderr, "items", 0)
	var batch []*recsysv1.Item
	send := func() error {
		if len(batch) == 0 {
			return nil
		}
		rctx, cancel := context.WithTimeout(ctx, rpcTimeout)
		defer cancel()
		res, err := c.Catalog.UpsertItems(rctx, &recsysv1.UpsertItemsRequest{Items: batch})
		if err != nil {
			return fmt.Errorf("upsert items: %w", err)
		}
		st.Sent += int64(len(batch))
		st.Accepted += int64(res.GetUpserted())
		batch = batch[:0]
		progress.Update(st.Sent, fmt.Sprintf("%d upserted", st.Accepted))
		return nil
	}
	err = ReadCatalogCSV(f, path, func(it *recsysv1.Item) error {
		st.Rows++
		batch = append(batch, it)
		if len(batch) == importBatch {
			return send()
		}
		return nil
	})
	if err == nil {
		err = send()
	}
	st.Seconds = time.Since(start).Seconds()
	progress.Done(st.Sent, fmt.Sprintf("%d upserted", st.Accepted))
	return st, err
}

// ReadCatalogCSV streams the items of a catalog CSV; a bad row is an error
// naming the line and field.
func ReadCatalogCSV(r io.Reader, name string, fn func(*recsysv1.Item) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("%s: header: %w", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	if _, ok := col["item_id"]; !ok {
		return fmt.Errorf("%s: header has no item_id column", name)
	}
	get := func(rec []string, k string) string {
		if i, ok := col[k]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		it := &recsysv1.Item{ItemId: get(rec, "item_id"), Category: get(rec, "category"), Available: true}
		if it.ItemId == "" {
			return fmt.Errorf("%s:%d: item_id is empty", name, line)
		}
		if s := get(rec, "price"); s != "" {
			if it.Price, err = strconv.ParseFloat(s, 64); err != nil {
				return fmt.Errorf("%s:%d: price %q: %w", name, line, s, err)
			}
		}
		if s := get(rec, "available"); s != "" {
			if it.Available, err = strconv.ParseBool(s); err != nil {
				return fmt.Errorf("%s:%d: available %q: want true or false", name, line, s)
			}
		}
		if s := get(rec, "created_at"); s != "" {
			t, err := dataset.ParseTime(s)
			if err != nil {
				return fmt.Errorf("%s:%d: created_at %q: %w", name, line, s, err)
			}
			it.CreatedAt = timestamppb.New(t)
		}
		if err := fn(it); err != nil {
			return err
		}
	}
}
