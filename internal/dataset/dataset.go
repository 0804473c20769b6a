package dataset

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

// Format names an input format.
type Format string

// The supported formats. The empty Format asks Read and ReadFile to detect
// the format from the content.
const (
	CSV        Format = "csv"        // the project's events CSV
	MovieLens  Format = "movielens"  // u.data, ratings.dat, ratings.csv
	Sequence   Format = "sequence"   // "user item item ..." per line
	Basket     Format = "basket"     // {"user": [[item, ...], ...]}
	Diginetica Format = "diginetica" // session_id;user_id;item_id;timeframe;eventdate
)

// Formats lists the supported formats, for flag help texts.
func Formats() []Format { return []Format{CSV, MovieLens, Sequence, Basket, Diginetica} }

// ParseFormat checks a format name given on a command line. The empty string
// and "auto" mean "detect" and return the empty Format.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "", "auto":
		return "", nil
	case CSV, MovieLens, Sequence, Basket, Diginetica:
		return f, nil
	}
	return "", fmt.Errorf("unknown data format %q: want one of %v or auto", s, Formats())
}

// DefaultBaseTime returns 2020-01-01T00:00:00Z, the first synthetic
// timestamp of formats that have an order but no times (Sequence, Basket)
// when Options.BaseTime is zero. It is fixed, not "now", so that reading a
// file twice gives the same events and the same derived ids.
func DefaultBaseTime() time.Time { return time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) }

// DefaultMaxErrors is how many row errors Stats.FirstErrors keeps when
// Options.MaxErrors is zero.
const DefaultMaxErrors = 10

// Options tune a read. The zero value reads strictly with the documented
// defaults.
type Options struct {
	// Name names the input in error messages; ReadFile sets it to the path
	// when empty.
	Name string
	// SkipBadRows counts and reports bad rows (Stats.Skipped,
	// Stats.FirstErrors) instead of stopping at the first one. Damage that
	// makes the rest of the input unreadable (broken JSON syntax, an
	// unusable header) still stops the read.
	SkipBadRows bool
	// MaxErrors caps Stats.FirstErrors; 0 means DefaultMaxErrors.
	MaxErrors int
	// BaseTime is the first synthetic timestamp for Sequence and Basket
	// inputs; zero means DefaultBaseTime.
	BaseTime time.Time
	// SequenceStep is the synthetic time between two items of one user in
	// a Sequence input; 0 means one minute.
	SequenceStep time.Duration
	// BasketStep is the synthetic time between two baskets of one user in a
	// Basket input; 0 means one day.
	BasketStep time.Duration
	// MinRating keeps only MovieLens ratings >= MinRating (for example 4 to
	// treat only high ratings as positive feedback); 0 keeps all. Dropped
	// ratings are counted in Stats.Filtered.
	MinRating float64
}

func (o Options) baseTime() time.Time {
	if o.BaseTime.IsZero() {
		return DefaultBaseTime()
	}
	return o.BaseTime
}

func (o Options) sequenceStep() time.Duration {
	if o.SequenceStep <= 0 {
		return time.Minute
	}
	return o.SequenceStep
}

func (o Options) basketStep() time.Duration {
	if o.BasketStep <= 0 {
		return 24 * time.Hour
	}
	return o.BasketStep
}

func (o Options) maxErrors() int {
	if o.MaxErrors <= 0 {
		return DefaultMaxErrors
	}
	return o.MaxErrors
}

// Stats tells what a read did.
type Stats struct {
	// Rows is the number of input records read: data lines of CSV,
	// MovieLens and Diginetica files (not the header), lines (users) of a
	// Sequence file, baskets of a Basket file.
	Rows int64
	// Events is the number of events handed to the callback.
	Events int64
	// Skipped counts bad rows (or bad items of a basket) that were dropped
	// because Options.SkipBadRows was set.
	Skipped int64
	// Filtered counts good rows dropped on purpose (Options.MinRating).
	Filtered int64
	// FirstErrors holds the first Options.MaxErrors errors of skipped rows.
	FirstErrors []error
}

// RowError is a bad row: where it is and what is wrong with it.
type RowError struct {
	File   string // Options.Name or the path
	Line   int64  // 1-based line; 0 when the format has no useful lines (JSON)
	Offset int64  // for JSON: the fault is in the value after this byte offset; used when Line is 0
	Field  string // the column or element at fault; empty for the whole row
	Value  string // the offending text, shortened
	Err    error
}

func (e *RowError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.FormatInt(e.Line, 10))
	} else {
		b.WriteString(": after byte ")
		b.WriteString(strconv.FormatInt(e.Offset, 10))
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		if e.Value != "" {
			b.WriteString(" ")
			b.WriteString(strconv.Quote(e.Value))
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *RowError) Unwrap() error { return e.Err }

// shorten keeps error messages readable when a field is a whole broken line.
func shorten(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// ReadFile reads the file at path in format f (detected from the content
// when f is empty) and calls fn with every event, in file order. A gzip
// file is decompressed transparently.
func ReadFile(ctx context.Context, path string, f Format, opts Options, fn func(event.Event) error) (st Stats, err error) {
	return ReadFileAt(ctx, path, f, opts, func(e event.Event, _ Position) error { return fn(e) })
}

// Position places an event in its input: the 1-based line, or for JSON
// inputs (Line 0) the byte offset its value follows.
type Position struct {
	Line   int64
	Offset int64
}

// String is "LINE" or "after byte OFFSET", the way row errors place a row.
func (p Position) String() string {
	if p.Line > 0 {
		return strconv.FormatInt(p.Line, 10)
	}
	return "after byte " + strconv.FormatInt(p.Offset, 10)
}

// ReadFileAt is ReadFile handing fn every event's position too, so that a
// caller can name the row of an event it later finds at fault (an import
// whose server refuses one event of a batch).
func ReadFileAt(ctx context.Context, path string, f Format, opts Options, fn func(event.Event, Position) error) (st Stats, err error) {
	file, err := os.Open(path)
	if err != nil {
		return Stats{}, fmt.Errorf("read data set: %w", err)
	}
	defer func() {
		if cerr := file.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", path, cerr)
		}
	}()
	if opts.Name == "" {
		opts.Name = path
	}
	return ReadAt(ctx, file, f, opts, fn)
}

// Detect opens the file at path and tells its format from its first bytes
// (after gzip decompression when the file is gzipped).
func Detect(path string) (f Format, err error) {
	file, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("detect format: %w", err)
	}
	defer func() {
		if cerr := file.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", path, cerr)
		}
	}()
	br, closeGzip, err := open(file, path)
	if err != nil {
		return "", err
	}
	defer closeGzip()
	head, err := peek(br)
	if err != nil {
		return "", fmt.Errorf("detect format of %s: %w", path, err)
	}
	f, err = sniff(head)
	if err != nil {
		return "", fmt.Errorf("detect format of %s: %w", path, err)
	}
	return f, nil
}

// bufSize is the read buffer: large enough that a scanner rarely refills and
// that the sniffing peek fits.
const bufSize = 1 << 20

// sniffSize is how much of the input format detection looks at.
const sniffSize = 64 << 10

// maxLine bounds one line of a line-based format (a Sequence line holds a
// user's whole history).
const maxLine = 64 << 20

// open buffers r, undoes gzip compression when r starts with the gzip
// magic bytes, and drops a UTF-8 byte order mark (spreadsheet exports write
// one; it would otherwise end up in the first id or break the JSON). The
// returned close function releases the gzip reader.
func open(r io.Reader, name string) (*bufio.Reader, func(), error) {
	br := bufio.NewReaderSize(r, bufSize)
	closeGzip := func() {}
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: gzip: %w", name, err)
		}
		br, closeGzip = bufio.NewReaderSize(zr, bufSize), func() { _ = zr.Close() }
	}
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3) // cannot fail: the bytes are buffered
	}
	return br, closeGzip, nil
}

// peek returns the first sniffSize bytes (fewer for a short input).
func peek(br *bufio.Reader) ([]byte, error) {
	head, err := br.Peek(sniffSize)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err
	}
	return head, nil
}

// Read reads r in format f (detected from the content when f is empty) and
// calls fn with every event in input order. It stops at the first bad row
// unless opts.SkipBadRows is set, when ctx is done, or when fn returns an
// error, which Read returns wrapped with the position of the row. The Stats
// cover what was read until then.
func Read(ctx context.Context, r io.Reader, f Format, opts Options, fn func(event.Event) error) (Stats, error) {
	if fn == nil {
		return ReadAt(ctx, r, f, opts, nil)
	}
	return ReadAt(ctx, r, f, opts, func(e event.Event, _ Position) error { return fn(e) })
}

// ReadAt is Read handing fn every event's position too (see ReadFileAt).
func ReadAt(ctx context.Context, r io.Reader, f Format, opts Options, fn func(event.Event, Position) error) (Stats, error) {
	if opts.Name == "" {
		opts.Name = "input"
	}
	if fn == nil {
		return Stats{}, fmt.Errorf("read %s: no callback for the events", opts.Name)
	}
	br, closeGzip, err := open(r, opts.Name)
	if err != nil {
		return Stats{}, err
	}
	defer closeGzip()
	if f == "" {
		head, err := peek(br)
		if err != nil {
			return Stats{}, fmt.Errorf("read %s: %w", opts.Name, err)
		}
		if f, err = sniff(head); err != nil {
			return Stats{}, fmt.Errorf("detect format of %s: %w", opts.Name, err)
		}
	}
	rd := &reader{ctx: ctx, opts: opts, fn: fn, ids: newIDs()}
	switch f {
	case CSV:
		err = rd.csv(br)
	case MovieLens:
		err = rd.movieLens(br)
	case Sequence:
		err = rd.sequence(br)
	case Basket:
		err = rd.basket(br)
	case Diginetica:
		err = rd.diginetica(br)
	default:
		err = fmt.Errorf("read %s: unknown format %q: want one of %v", opts.Name, f, Formats())
	}
	return rd.stats, err
}

// reader carries the state shared by the format readers.
type reader struct {
	ctx   context.Context
	opts  Options
	fn    func(event.Event, Position) error
	ids   *ids
	stats Stats
}

// checkEvery is how many rows pass between two looks at the context.
const checkEvery = 1024

// row counts a row and looks at the context now and then.
func (r *reader) row() error {
	r.stats.Rows++
	if r.stats.Rows%checkEvery == 0 {
		if err := r.ctx.Err(); err != nil {
			return fmt.Errorf("read %s: %w", r.opts.Name, err)
		}
	}
	return nil
}

// bad handles a bad row: it returns the error when rows are not skipped,
// otherwise counts it, keeps it if there is room, and returns nil.
func (r *reader) bad(e *RowError) error {
	if e.File == "" {
		e.File = r.opts.Name
	}
	e.Value = shorten(e.Value)
	if !r.opts.SkipBadRows {
		return e
	}
	r.stats.Skipped++
	if len(r.stats.FirstErrors) < r.opts.maxErrors() {
		r.stats.FirstErrors = append(r.stats.FirstErrors, e)
	}
	return nil
}

// emit gives e an id when it has none and hands it to the callback; line (or
// the byte offset for JSON) places a callback error.
//
// Every reader's events pass here, so this is where the one id rule
// (event.CheckID) is applied: an event whose user, item or event id breaks it
// is a bad row at line (or offset), never handed on.
func (r *reader) emit(e event.Event, line, offset int64) error {
	if err := badID(e); err != nil {
		err.Line, err.Offset = line, offset
		return r.bad(err)
	}
	if e.ID == "" {
		e.ID = r.ids.derive(&e)
	}
	r.stats.Events++
	if err := r.fn(e, Position{Line: line, Offset: offset}); err != nil {
		if line > 0 {
			return fmt.Errorf("%s:%d: %w", r.opts.Name, line, err)
		}
		return fmt.Errorf("%s: after byte %d: %w", r.opts.Name, offset, err)
	}
	return nil
}

// badID returns the RowError of the first id of e that breaks the id rule,
// or nil.
func badID(e event.Event) *RowError {
	for _, f := range []struct{ col, v string }{{colUser, e.UserID}, {colItem, e.ItemID}, {colID, e.ID}} {
		if f.col == colID && f.v == "" {
			continue // derived below
		}
		if err := event.CheckID(f.v); err != nil {
			return &RowError{Field: f.col, Value: f.v, Err: err}
		}
	}
	return nil
}

// ids derives deterministic event ids from event content. It remembers the
// first 8 bytes of every id it handed out, so that an exact duplicate row
// gets a distinct id ("<hash>-2") instead of being merged with the first one
// by the server's deduplication. That costs about 16 bytes per row while a
// file without event ids is read; a 64-bit prefix collision between two
// different rows only adds a needless suffix, it never merges events.
type ids struct {
	buf  []byte
	seen map[uint64]struct{}
	dups map[uint64]uint32
}

func newIDs() *ids { return &ids{seen: make(map[uint64]struct{}), dups: make(map[uint64]uint32)} }

func (d *ids) derive(e *event.Event) string {
	b := d.buf[:0]
	b = append(b, e.UserID...)
	b = append(b, 0)
	b = append(b, e.ItemID...)
	b = append(b, 0, byte(e.Type))
	b = binary.BigEndian.AppendUint32(b, math.Float32bits(e.Weight))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
	b = binary.BigEndian.AppendUint32(b, uint32(e.Quantity))
	d.buf = b
	sum := sha256.Sum256(b)
	key := binary.BigEndian.Uint64(sum[:8])
	id := hex.EncodeToString(sum[:16])
	if _, ok := d.seen[key]; !ok {
		d.seen[key] = struct{}{}
		return id
	}
	n := d.dups[key] + 1
	if n == 1 {
		n = 2
	}
	d.dups[key] = n
	return id + "-" + strconv.FormatUint(uint64(n), 10)
}

// lines iterates over the lines of a line-based format without the line
// terminator, counting them.
type lines struct {
	sc   *bufio.Scanner
	line int64
}

func newLines(r io.Reader) *lines {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	return &lines{sc: sc}
}

func (l *lines) next() ([]byte, bool) {
	if !l.sc.Scan() {
		return nil, false
	}
	l.line++
	return bytes.TrimSuffix(l.sc.Bytes(), []byte{'\r'}), true
}

func (l *lines) err(name string) error {
	err := l.sc.Err()
	if err == nil {
		return nil
	}
	if errors.Is(err, bufio.ErrTooLong) {
		return fmt.Errorf("%s:%d: line longer than %d bytes", name, l.line+1, maxLine)
	}
	return fmt.Errorf("read %s: %w", name, err)
}
