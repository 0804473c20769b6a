package dataset

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// sniff tells the format from the first bytes of an input. The rules are
// checked in order, the most specific first:
//
//  1. a JSON object ('{' first)                          -> Basket
//  2. a ';' header naming session_id, item_id, timeframe -> Diginetica
//  3. a ',' header naming user_id, item_id, event_type   -> CSV
//  4. the header userId,movieId,rating,timestamp         -> MovieLens
//  5. four "::"-separated fields, or four TAB-separated
//     numbers                                            -> MovieLens
//  6. two or more space-separated tokens                 -> Sequence
func sniff(head []byte) (Format, error) {
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")) // UTF-8 BOM
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	if len(trimmed) == 0 {
		return "", errors.New("input is empty")
	}
	if trimmed[0] == '{' {
		return Basket, nil
	}
	first := string(trimmed)
	if i := strings.IndexByte(first, '\n'); i >= 0 {
		first = first[:i]
	}
	first = strings.TrimSuffix(first, "\r")

	if has(headerFields(first, ";"), "session_id", "item_id", "timeframe") {
		return Diginetica, nil
	}
	if has(headerFields(first, ","), "user_id", "item_id", "event_type") {
		return CSV, nil
	}
	if has(headerFields(first, ","), "userid", "movieid", "rating") {
		return MovieLens, nil
	}
	if f := strings.Split(first, "::"); len(f) == 4 {
		return MovieLens, nil
	}
	if f := strings.Split(first, "\t"); len(f) == 4 && allNumbers(f) {
		return MovieLens, nil
	}
	if len(strings.Fields(first)) >= 2 {
		return Sequence, nil
	}
	return "", errors.New("not a known format (events CSV, MovieLens, sequence, basket JSON, DIGINETICA); name the format explicitly")
}

// headerFields splits a header line and normalizes the names.
func headerFields(line, sep string) []string {
	f := strings.Split(line, sep)
	for i := range f {
		f[i] = strings.ToLower(strings.Trim(strings.TrimSpace(f[i]), `"`))
	}
	return f
}

// has reports whether all names are among fields.
func has(fields []string, names ...string) bool {
	for _, n := range names {
		found := false
		for _, f := range fields {
			if f == n {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func allNumbers(f []string) bool {
	for _, s := range f {
		if _, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err != nil {
			return false
		}
	}
	return true
}
