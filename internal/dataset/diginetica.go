package dataset

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

// diginetica reads DIGINETICA (CIKM Cup 2016) item views:
//
//	session_id;user_id;item_id;timeframe;eventdate
//	1;NA;81766;526309;2016-05-09
//
// Each row is a View. The user is user_id, or "s:"+session_id when user_id
// is NA (most sessions are anonymous). The time is eventdate (UTC midnight)
// plus timeframe milliseconds; the data set gives no clock time, so these
// times are approximate within a day.
func (r *reader) diginetica(in io.Reader) error {
	required := []string{"session_id", "user_id", "item_id", "timeframe", "eventdate"}
	return r.headerRows(in, ';', required, nil, parseDiginetica)
}

func parseDiginetica(cols columns, rec []string) (event.Event, *RowError) {
	e := event.Event{Type: event.View}
	session := cols.field(rec, "session_id")
	if session == "" {
		return e, &RowError{Field: "session_id", Err: errors.New("empty")}
	}
	e.UserID = cols.field(rec, "user_id")
	if e.UserID == "" || strings.EqualFold(e.UserID, "NA") {
		e.UserID = "s:" + session
	}
	if e.ItemID = cols.field(rec, "item_id"); e.ItemID == "" {
		return e, &RowError{Field: "item_id", Err: errors.New("empty")}
	}
	s := cols.field(rec, "eventdate")
	day, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return e, &RowError{Field: "eventdate", Value: s, Err: errors.New("want a date 2006-01-02")}
	}
	s = cols.field(rec, "timeframe")
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms < 0 || ms > int64(365*24*time.Hour/time.Millisecond) {
		return e, &RowError{Field: "timeframe", Value: s, Err: errors.New("want milliseconds >= 0 (at most a year)")}
	}
	e.Time = day.Add(time.Duration(ms) * time.Millisecond)
	// Year 0000 parses, and a year of timeframe can pass 9999: keep to the
	// instants the events CSV (RFC 3339) can write.
	if y := e.Time.Year(); e.Time.IsZero() || y < 1 || y > 9999 {
		return e, &RowError{Field: "eventdate", Value: cols.field(rec, "eventdate"), Err: errors.New("out of range: want years 0001-9999")}
	}
	return e, nil
}
