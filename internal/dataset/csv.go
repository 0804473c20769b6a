package dataset

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

// The columns of the events CSV. The writer writes them in this order; the
// reader matches them by name in any order.
const (
	colUser     = "user_id"
	colItem     = "item_id"
	colType     = "event_type"
	colTime     = "timestamp"
	colQuantity = "quantity"
	colID       = "event_id"
)

// csvHeader is what CSVWriter writes first.
var csvHeader = []string{colUser, colItem, colType, colTime, colQuantity, colID}

// columns maps header names to field positions; -1 marks an absent optional
// column.
type columns map[string]int

// mapHeader locates the required and optional columns in a header row.
// Names are matched case-insensitively after trimming spaces and a UTF-8 BOM;
// other columns are ignored.
func mapHeader(name string, header, required, optional []string) (columns, error) {
	pos := make(map[string]int, len(header))
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if h == "" {
			continue
		}
		if j, dup := pos[h]; dup {
			return nil, fmt.Errorf("%s:1: header: column %q appears twice (fields %d and %d)", name, h, j+1, i+1)
		}
		pos[h] = i
	}
	cols := make(columns, len(required)+len(optional))
	var missing []string
	for _, r := range required {
		i, ok := pos[r]
		if !ok {
			missing = append(missing, r)
			continue
		}
		cols[r] = i
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s:1: header: missing column(s) %s; want %s (found %q)",
			name, strings.Join(missing, ", "), strings.Join(required, ","), header)
	}
	for _, o := range optional {
		if i, ok := pos[o]; ok {
			cols[o] = i
		} else {
			cols[o] = -1
		}
	}
	return cols, nil
}

// field returns the trimmed value of column c, "" for an absent column.
func (c columns) field(rec []string, name string) string {
	i := c[name]
	if i < 0 || i >= len(rec) {
		return ""
	}
	return strings.TrimSpace(rec[i])
}

// headerRows reads a delimited file with a header row, turns every data
// record into an event with parse and emits it, reporting a record parse
// refuses as a bad row on its line. It deals with the CSV-level damage
// (unbalanced quotes, wrong field counts) so that parse only checks field
// values.
func (r *reader) headerRows(in io.Reader, comma rune, required, optional []string, parse func(cols columns, rec []string) (event.Event, *RowError)) error {
	cr := csv.NewReader(in)
	cr.Comma = comma
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1 // counted here, for a clearer message
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: empty input: want a header line %s", r.opts.Name, strings.Join(required, string(comma)))
	}
	if err != nil {
		return fmt.Errorf("%s: header: %w", r.opts.Name, err)
	}
	header = append([]string(nil), header...) // ReuseRecord would overwrite it
	cols, err := mapHeader(r.opts.Name, header, required, optional)
	if err != nil {
		return err
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return fmt.Errorf("read %s: %w", r.opts.Name, err)
			}
			if err := r.row(); err != nil {
				return err
			}
			if err := r.bad(&RowError{Line: int64(pe.Line), Err: pe.Err}); err != nil {
				return err
			}
			continue
		}
		if err := r.row(); err != nil {
			return err
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(header) {
			err := fmt.Errorf("has %d fields, the header has %d", len(rec), len(header))
			if err := r.bad(&RowError{Line: int64(line), Value: strings.Join(rec, string(comma)), Field: "row", Err: err}); err != nil {
				return err
			}
			continue
		}
		e, rowErr := parse(cols, rec)
		if rowErr != nil {
			rowErr.Line = int64(line)
			if err := r.bad(rowErr); err != nil {
				return err
			}
			continue
		}
		if err := r.emit(e, int64(line), 0); err != nil {
			return err
		}
	}
}

// csv reads the events CSV.
func (r *reader) csv(in io.Reader) error {
	required := []string{colUser, colItem, colType, colTime}
	optional := []string{colID, colQuantity}
	return r.headerRows(in, ',', required, optional, parseCSVRow)
}

func parseCSVRow(cols columns, rec []string) (event.Event, *RowError) {
	var e event.Event
	if e.UserID = cols.field(rec, colUser); e.UserID == "" {
		return e, &RowError{Field: colUser, Err: errors.New("empty")}
	}
	if e.ItemID = cols.field(rec, colItem); e.ItemID == "" {
		return e, &RowError{Field: colItem, Err: errors.New("empty")}
	}
	s := cols.field(rec, colType)
	t, w, err := event.ParseType(s)
	if err != nil {
		return e, &RowError{Field: colType, Value: s, Err: err}
	}
	e.Type, e.Weight = t, w
	s = cols.field(rec, colTime)
	if e.Time, err = ParseTime(s); err != nil {
		return e, &RowError{Field: colTime, Value: s, Err: err}
	}
	if s = cols.field(rec, colQuantity); s != "" {
		q, err := strconv.ParseInt(s, 10, 32)
		if err != nil || q < 0 {
			return e, &RowError{Field: colQuantity, Value: s, Err: errors.New("want an integer >= 0 (0 or empty means 1)")}
		}
		e.Quantity = int32(q)
	}
	e.ID = cols.field(rec, colID)
	// encoding/csv keeps a lone carriage return inside a field, but turns a
	// quoted "\r\n" into "\n": an id holding one cannot be written back
	// (CSVWriter refuses it) and is almost surely damage.
	for _, f := range []struct{ name, v string }{{colUser, e.UserID}, {colItem, e.ItemID}, {colID, e.ID}} {
		if strings.ContainsRune(f.v, '\r') {
			return e, &RowError{Field: f.name, Value: f.v, Err: errors.New("holds a carriage return")}
		}
	}
	return e, nil
}

// maxUnixSeconds is 9999-12-31T23:59:59Z, the last instant RFC 3339 can
// write; a larger number is almost surely milliseconds.
const maxUnixSeconds = 253402300799

// ParseTime reads a timestamp of the events CSV: RFC 3339 with any offset
// ("2024-03-01T12:00:00Z", "2024-03-01T13:00:00.5+01:00") or unix seconds,
// integer or with up to nine fractional digits ("1709294400",
// "1709294400.25"). The result is in UTC.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("empty")
	}
	if isUnixSeconds(s) {
		intPart, frac, _ := strings.Cut(s, ".")
		sec, err := strconv.ParseInt(intPart, 10, 64)
		if err != nil || sec > maxUnixSeconds {
			return time.Time{}, errors.New("unix time out of range (after year 9999): the format wants seconds, not milliseconds")
		}
		var nsec int64
		if frac != "" {
			if len(frac) > 9 {
				frac = frac[:9] // below a nanosecond
			}
			n, _ := strconv.ParseInt(frac, 10, 64) // digits only, checked above
			for i := len(frac); i < 9; i++ {
				n *= 10
			}
			nsec = n
		}
		return time.Unix(sec, nsec).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, errors.New("want RFC 3339 (2006-01-02T15:04:05Z) or unix seconds")
	}
	// Year 0000 parses, and an offset can move a time across year 1 or
	// 9999; the writer (and RFC 3339) cannot express those instants in UTC.
	if t = t.UTC(); t.IsZero() || t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, errors.New("out of range: want a time after 0001-01-01T00:00:00Z and before year 10000 (UTC)")
	}
	return t, nil
}

// isUnixSeconds reports whether s is digits with at most one '.' between
// digits.
func isUnixSeconds(s string) bool {
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
		case c == '.' && !dot && i > 0 && i < len(s)-1:
			dot = true
		default:
			return false
		}
	}
	return true
}

// CSVWriter writes events in the events CSV format that the CSV reader reads
// back to identical events:
//
//	user_id,item_id,event_type,timestamp,quantity,event_id
//	u1,i7,view,2024-03-01T12:00:00.123Z,1,e1-1
//
// event_type is view, cart, purchase, or the weight of a Custom event;
// timestamp is RFC 3339 in UTC with the nanoseconds the event has. Fields are
// quoted when they contain a comma, a quote or a line break. Call Flush at
// the end; an empty writer still writes the header, so that the output is a
// valid (empty) data set.
type CSVWriter struct {
	w      *bufio.Writer
	buf    []byte
	header bool
}

// NewCSVWriter returns a writer that buffers its output to w.
func NewCSVWriter(w io.Writer) *CSVWriter {
	return &CSVWriter{w: bufio.NewWriterSize(w, 256<<10)}
}

// Write writes one event. It refuses an event the reader would read back
// differently or not at all: empty ids, ids with leading or trailing spaces
// (the reader trims fields) or a carriage return, an invalid type, a weight on a non-Custom event,
// a negative quantity, a zero time or one outside years 1-9999.
func (cw *CSVWriter) Write(e event.Event) error {
	if err := checkWritable(e); err != nil {
		return fmt.Errorf("write event %q: %w", e.ID, err)
	}
	if err := cw.writeHeader(); err != nil {
		return err
	}
	b := cw.buf[:0]
	b = appendField(b, e.UserID)
	b = append(b, ',')
	b = appendField(b, e.ItemID)
	b = append(b, ',')
	if e.Type == event.Custom {
		b = strconv.AppendFloat(b, float64(e.Weight), 'g', -1, 32)
	} else {
		b = append(b, e.Type.String()...)
	}
	b = append(b, ',')
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(e.Quantity), 10)
	b = append(b, ',')
	b = appendField(b, e.ID)
	b = append(b, '\n')
	cw.buf = b
	if _, err := cw.w.Write(b); err != nil {
		return fmt.Errorf("write event %q: %w", e.ID, err)
	}
	return nil
}

// Flush writes the header if nothing was written yet and flushes the buffer.
func (cw *CSVWriter) Flush() error {
	if err := cw.writeHeader(); err != nil {
		return err
	}
	if err := cw.w.Flush(); err != nil {
		return fmt.Errorf("flush events CSV: %w", err)
	}
	return nil
}

func (cw *CSVWriter) writeHeader() error {
	if cw.header {
		return nil
	}
	cw.header = true
	if _, err := cw.w.WriteString(strings.Join(csvHeader, ",") + "\n"); err != nil {
		return fmt.Errorf("write events CSV header: %w", err)
	}
	return nil
}

func checkWritable(e event.Event) error {
	for _, f := range []struct{ name, v string }{{colUser, e.UserID}, {colItem, e.ItemID}, {colID, e.ID}} {
		if f.v == "" && f.name != colID {
			return fmt.Errorf("%s is empty", f.name)
		}
		if f.v != strings.TrimSpace(f.v) {
			return fmt.Errorf("%s %q has leading or trailing spaces, which the reader trims", f.name, f.v)
		}
		if strings.ContainsRune(f.v, '\r') {
			return fmt.Errorf("%s %q holds a carriage return, which CSV readers drop", f.name, f.v)
		}
	}
	if !e.Type.Valid() {
		return fmt.Errorf("invalid event type %v", e.Type)
	}
	if e.Type == event.Custom {
		w := float64(e.Weight)
		if math.IsNaN(w) || math.IsInf(w, 0) || w <= 0 {
			return fmt.Errorf("custom event weight must be a finite number > 0, got %v", e.Weight)
		}
	} else if e.Weight != 0 {
		return fmt.Errorf("weight %v on a %v event: only custom events carry a weight", e.Weight, e.Type)
	}
	if e.Quantity < 0 {
		return fmt.Errorf("negative quantity %d", e.Quantity)
	}
	if y := e.Time.UTC().Year(); e.Time.IsZero() || y < 1 || y > 9999 {
		return fmt.Errorf("time %v is zero or outside years 1-9999", e.Time)
	}
	return nil
}

// appendField appends s, quoted as RFC 4180 wants when it holds a comma, a
// quote or a line break.
func appendField(b []byte, s string) []byte {
	if !strings.ContainsAny(s, ",\"\r\n") {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}
