package dataset

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

// movieLens reads the three MovieLens rating layouts; the first non-empty
// line decides which one:
//
//	u.data       user TAB item TAB rating TAB timestamp   (ML-100K)
//	ratings.dat  user::item::rating::timestamp            (ML-1M, ML-10M)
//	ratings.csv  userId,movieId,rating,timestamp + header (ML-20M, ML-latest)
//
// A rating r becomes a Custom event of weight r (so a 5 counts as much as
// a purchase under the default weighting, a 1 as a view); ratings below
// Options.MinRating are dropped and counted in Stats.Filtered.
func (r *reader) movieLens(in io.Reader) error {
	ls := newLines(in)
	sep := ""
	for {
		b, ok := ls.next()
		if !ok {
			break
		}
		line := string(b)
		if strings.TrimSpace(line) == "" {
			continue
		}
		if sep == "" {
			switch {
			case strings.Contains(line, "::"):
				sep = "::"
			case strings.Contains(line, "\t"):
				sep = "\t"
			case strings.Contains(line, ","):
				sep = ","
				if has(headerFields(line, ","), "userid", "movieid", "rating", "timestamp") {
					continue
				}
			default:
				return fmt.Errorf("%s:%d: not a MovieLens rating line (want user, item, rating, timestamp separated by TAB, :: or ,): %q",
					r.opts.Name, ls.line, shorten(line))
			}
		}
		if err := r.row(); err != nil {
			return err
		}
		e, rowErr := parseRating(line, sep)
		if rowErr != nil {
			rowErr.Line = ls.line
			if err := r.bad(rowErr); err != nil {
				return err
			}
			continue
		}
		if float64(e.Weight) < r.opts.MinRating {
			r.stats.Filtered++
			continue
		}
		if err := r.emit(e, ls.line, 0); err != nil {
			return err
		}
	}
	return ls.err(r.opts.Name)
}

func parseRating(line, sep string) (event.Event, *RowError) {
	f := strings.Split(line, sep)
	if len(f) != 4 {
		return event.Event{}, &RowError{Field: "row", Value: line,
			Err: fmt.Errorf("has %d fields, want 4 (user, item, rating, timestamp) separated by %q", len(f), sep)}
	}
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	e := event.Event{UserID: f[0], ItemID: f[1], Type: event.Custom}
	if e.UserID == "" {
		return e, &RowError{Field: "user", Err: errors.New("empty")}
	}
	if e.ItemID == "" {
		return e, &RowError{Field: "item", Err: errors.New("empty")}
	}
	rating, err := strconv.ParseFloat(f[2], 32)
	if err != nil || math.IsNaN(rating) || math.IsInf(rating, 0) || rating <= 0 {
		return e, &RowError{Field: "rating", Value: f[2], Err: errors.New("want a number > 0")}
	}
	e.Weight = float32(rating)
	sec, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil || sec < 0 || sec > maxUnixSeconds {
		return e, &RowError{Field: "timestamp", Value: f[3], Err: errors.New("want unix seconds")}
	}
	e.Time = time.Unix(sec, 0).UTC()
	return e, nil
}
