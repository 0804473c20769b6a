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
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
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
// dataset package detects) and sends it in batches. A bad row, for any
// reason, is skipped and reported with its line, never the end of the
// import: rows the reader cannot parse or whose ids break the id rule,
// events the client cannot encode, and events the server refuses
// (InvalidArgument naming one event of a batch: that event is dropped and
// the rest of the batch sent again). Event ids make a re-import idempotent.
//
// format names the file's format (empty: detect it). Progress goes to
// progress (see cli.Progress: a bar on a terminal, a line every few seconds
// with the total and ETA elsewhere).
func ImportEvents(ctx context.Context, c *client.Client, path string, format dataset.Format, rpcTimeout time.Duration, progress io.Writer) (ImportStats, error) {
	st := ImportStats{File: path}
	start := time.Now()
	imp := &importer{c: c, timeout: rpcTimeout, st: &st, progress: cli.NewProgress(progress, "events", csvRows(path, format)), start: start}
	rs, err := dataset.ReadFileAt(ctx, path, format, dataset.Options{SkipBadRows: true, MaxErrors: maxReportErrors}, func(e event.Event, pos dataset.Position) error {
		p := toProtoEvent(e)
		if err := encodable(p); err != nil {
			imp.reject(fmt.Sprintf("%s:%s: event %s cannot be encoded (client-side, not sent): %v", path, pos, shorten(e.ID), err))
			return nil
		}
		imp.batch = append(imp.batch, p)
		imp.where = append(imp.where, path+":"+pos.String())
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

// encodable reports the error protobuf would meet encoding m (a string
// field that is not valid UTF-8), which gRPC would otherwise turn into an
// Internal status for the whole batch although no server saw it.
func encodable(m proto.Message) error {
	_, err := proto.Marshal(m)
	return err
}

// maxEcho bounds a value echoed in a report: a 1 MB field is named by its
// first bytes, not printed whole.
const maxEcho = 64

// shorten quotes s, cut to maxEcho bytes.
func shorten(s string) string {
	if len(s) > maxEcho {
		return strconv.Quote(s[:maxEcho]) + fmt.Sprintf("... (%d bytes)", len(s))
	}
	return strconv.Quote(s)
}

// shortenMessage cuts a server's error message that could echo a value.
func shortenMessage(s string) string {
	const max = 256
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
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
	where    []string // "file:line" of every event in batch
	st       *ImportStats
	progress *cli.Progress
	start    time.Time
}

// badElement finds the index of the element of a batch (events[3],
// items[3]) a validation error names, and the rest of the message.
var badElement = regexp.MustCompile(`^(?:events|items)\[(\d+)\]\.?(.*)$`)

// refused finds the element of a batch of n an InvalidArgument status names
// and what the server said about it without the batch index (which means
// nothing to the reader of the report); ok is false when the status names
// no element of the batch.
func refused(st *status.Status, n int) (i int, msg string, ok bool) {
	if st.Code() != codes.InvalidArgument {
		return 0, "", false
	}
	m := badElement.FindStringSubmatch(st.Message())
	if m == nil {
		return 0, "", false
	}
	i, err := strconv.Atoi(m[1])
	if err != nil || i >= n {
		return 0, "", false
	}
	return i, shortenMessage(m[2]), true
}

// reject counts a rejected row and keeps its reason if there is room.
func (im *importer) reject(msg string) {
	im.st.Rejected++
	im.st.addError(msg)
}

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
			im.batch, im.where = im.batch[:0], im.where[:0]
			im.progress.Update(im.st.Sent+im.st.Rejected, im.detail())
			return nil
		}
		st, _ := status.FromError(err)
		if i, msg, ok := refused(st, len(im.batch)); ok {
			e := im.batch[i]
			im.reject(fmt.Sprintf("%s: event %s (user %s, item %s) refused by the server: %s", im.where[i],
				shorten(e.GetEventId()), shorten(e.GetUserId()), shorten(e.GetItemId()), msg))
			im.batch = slices.Delete(im.batch, i, i+1)
			im.where = slices.Delete(im.where, i, i+1)
			continue
		}
		switch st.Code() {
		case codes.InvalidArgument:
			return fmt.Errorf("server refused a batch: %w", err)
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
// and upserts it in batches. Like ImportEvents it skips and reports a bad
// row (unparsable, an item id breaking the id rule, not encodable, refused
// by the server) with its line and sends the rest.
func ImportCatalog(ctx context.Context, c *client.Client, path string, rpcTimeout time.Duration, stderr io.Writer) (ImportStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return ImportStats{}, err
	}
	defer f.Close()
	start := time.Now()
	st := ImportStats{File: path}
	progress := cli.NewProgress(stderr, "items", 0)
	var (
		batch []*recsysv1.Item
		where []string
	)
	reject := func(msg string) {
		st.Rejected++
		st.addError(msg)
	}
	send := func() error {
		for len(batch) > 0 {
			rctx, cancel := context.WithTimeout(ctx, rpcTimeout)
			res, err := c.Catalog.UpsertItems(rctx, &recsysv1.UpsertItemsRequest{Items: batch})
			cancel()
			if err == nil {
				st.Sent += int64(len(batch))
				st.Accepted += int64(res.GetUpserted())
				batch, where = batch[:0], where[:0]
				progress.Update(st.Sent+st.Rejected, fmt.Sprintf("%d upserted, %d rejected", st.Accepted, st.Rejected))
				return nil
			}
			s, _ := status.FromError(err)
			i, msg, ok := refused(s, len(batch))
			if !ok {
				return fmt.Errorf("upsert items: %w", err)
			}
			reject(fmt.Sprintf("%s: item %s refused by the server: %s", where[i], shorten(batch[i].GetItemId()), msg))
			batch, where = slices.Delete(batch, i, i+1), slices.Delete(where, i, i+1)
		}
		return nil
	}
	err = ReadCatalogCSV(f, path, func(it *recsysv1.Item, line int64) error {
		st.Rows++
		if err := encodable(it); err != nil {
			reject(fmt.Sprintf("%s:%d: item %s cannot be encoded (client-side, not sent): %v", path, line, shorten(it.GetItemId()), err))
			return nil
		}
		batch = append(batch, it)
		where = append(where, fmt.Sprintf("%s:%d", path, line))
		if len(batch) == importBatch {
			return send()
		}
		return nil
	}, func(err error) {
		st.Rows++
		reject(err.Error())
	})
	if err == nil {
		err = send()
	}
	st.Seconds = time.Since(start).Seconds()
	progress.Done(st.Sent+st.Rejected, fmt.Sprintf("%d upserted, %d rejected", st.Accepted, st.Rejected))
	return st, err
}

// ReadCatalogCSV streams the items of a catalog CSV with their lines. A bad
// row (unbalanced quotes, an empty or invalid item id, a bad price,
// availability or date) is handed to bad as an error naming the line and
// field, and reading goes on; with bad nil it ends the read. A broken
// header always ends it.
func ReadCatalogCSV(r io.Reader, name string, fn func(it *recsysv1.Item, line int64) error, bad func(error)) error {
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
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) && bad != nil {
			bad(fmt.Errorf("%s:%d: %w", name, pe.StartLine, pe.Err))
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		it, err := catalogRow(col, rec)
		if err != nil {
			err = fmt.Errorf("%s:%d: %w", name, line, err)
			if bad == nil {
				return err
			}
			bad(err)
			continue
		}
		if err := fn(it, int64(line)); err != nil {
			return err
		}
	}
}

// catalogRow parses one record of a catalog CSV.
func catalogRow(col map[string]int, rec []string) (*recsysv1.Item, error) {
	get := func(k string) string {
		if i, ok := col[k]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	it := &recsysv1.Item{ItemId: get("item_id"), Category: get("category"), Available: true}
	if err := event.CheckID(it.ItemId); err != nil {
		return nil, fmt.Errorf("item_id %s: %w", shorten(it.ItemId), err)
	}
	var err error
	if s := get("price"); s != "" {
		if it.Price, err = strconv.ParseFloat(s, 64); err != nil {
			return nil, fmt.Errorf("price %s: want a number", shorten(s))
		}
	}
	if s := get("available"); s != "" {
		if it.Available, err = strconv.ParseBool(s); err != nil {
			return nil, fmt.Errorf("available %s: want true or false", shorten(s))
		}
	}
	if s := get("created_at"); s != "" {
		t, err := dataset.ParseTime(s)
		if err != nil {
			return nil, fmt.Errorf("created_at %s: %w", shorten(s), err)
		}
		it.CreatedAt = timestamppb.New(t)
	}
	return it, nil
}
