package profile

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/recsys-dev/recsys/internal/event"
)

// Popular returns the n items with the highest decayed popularity, best
// first. An item's score is Σ over the buckets in the window of its count
// there times 2^(−(now−bucket start)/PopularityHalfLife).
//
// The weighted sum of the past buckets is cached in Redis for the lifetime
// of the current bucket, so a call costs time in proportion to the distinct
// items in the window (the first call of each bucket period: to all (item,
// bucket) pairs). A late event counted into a past bucket therefore shows
// up when the next bucket begins. Callers on a request path should still
// cache the result for a few seconds.
func (s *Store) Popular(ctx context.Context, n int) ([]ItemScore, error) {
	if n < 1 {
		return nil, fmt.Errorf("popular items: n must be >= 1, got %d", n)
	}
	cfg := s.cfg
	nowMs := cfg.Now().UnixMilli()
	bucketMs := cfg.PopularityBucket.Milliseconds()
	halfLifeMs := float64(cfg.PopularityHalfLife.Milliseconds())
	nb := bucketCount(cfg.PopularityWindow, cfg.PopularityBucket)
	current := floorDiv(nowMs, bucketMs) * bucketMs

	keys := make([]string, 0, nb+2)
	keys = append(keys, s.popularityKey(current)+":past", s.popularityKey(current), s.popScratch)
	args := make([]any, 0, nb+2)
	args = append(args,
		strconv.FormatInt(current+bucketMs-nowMs, 10),
		strconv.FormatFloat(math.Exp2(-float64(nowMs-current)/halfLifeMs), 'g', -1, 64),
		strconv.Itoa(n-1))
	for i := int64(1); i < nb; i++ {
		start := current - i*bucketMs
		keys = append(keys, s.popularityKey(start))
		args = append(args, strconv.FormatFloat(math.Exp2(-float64(current-start)/halfLifeMs), 'g', -1, 64))
	}

	res, err := popularScript.Run(ctx, s.rdb, keys, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("popular items: %w", err)
	}
	if len(res)%2 != 0 {
		return nil, fmt.Errorf("popular items: odd reply length %d", len(res))
	}
	out := make([]ItemScore, len(res)/2)
	for i := range out {
		score, err := strconv.ParseFloat(res[2*i+1], 64)
		if err != nil {
			return nil, fmt.Errorf("popular items: score of %q: %w", res[2*i], err)
		}
		out[i] = ItemScore{ItemID: res[2*i], Score: score}
	}
	return out, nil
}

// readPage is how many stream entries ReadEvents fetches per round trip.
const readPage = 1000

// ReadEvents calls fn with every event recorded in [since, until), oldest
// first, reading the global stream in pages. The bounds are the time the
// Store recorded an event (its clock, millisecond resolution), not the
// event's own Time: an incremental reader that moves its window forward
// never misses a late event. A zero since or until leaves that end open.
// An error from fn stops the iteration and is returned.
func (s *Store) ReadEvents(ctx context.Context, since, until time.Time, fn func(event.Event) error) error {
	start, end := "-", "+"
	if !since.IsZero() {
		start = ms(since)
	}
	if !until.IsZero() {
		if !since.IsZero() && !since.Before(until) {
			return nil
		}
		// "<ms>" as an end means the last id of that millisecond.
		end = strconv.FormatInt(until.UnixMilli()-1, 10)
	}
	deleted, err := s.tombstones(ctx)
	if err != nil {
		return err
	}
	for {
		msgs, err := s.rdb.XRangeN(ctx, s.stream, start, end, readPage).Result()
		if err != nil {
			return fmt.Errorf("read event stream from %s: %w", start, err)
		}
		for _, m := range msgs {
			e, err := parseStreamEvent(m.Values)
			if err != nil {
				return fmt.Errorf("event stream entry %s: %w", m.ID, err)
			}
			if deletedAfter(deleted, e.UserID, m.ID) {
				continue
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(msgs) < readPage {
			return nil
		}
		start = "(" + msgs[len(msgs)-1].ID // exclusive: after the last one read
	}
}

// Field names of a stream entry, as globalScript writes them. Every entry
// has all of them in the same order, which lets Redis store the names once
// per listpack node instead of once per entry.
const (
	fieldID       = "i"
	fieldUser     = "u"
	fieldItem     = "p"
	fieldType     = "t"
	fieldTime     = "s"
	fieldQuantity = "q"
	fieldWeight   = "w"
)

func parseStreamEvent(v map[string]any) (event.Event, error) {
	str := func(k string) (string, error) {
		s, ok := v[k].(string)
		if !ok || s == "" {
			return "", fmt.Errorf("field %q missing", k)
		}
		return s, nil
	}
	var e event.Event
	var errs []error
	var err error
	var typ, ts, qty, w string
	for _, f := range []struct {
		k   string
		dst *string
	}{{fieldID, &e.ID}, {fieldUser, &e.UserID}, {fieldItem, &e.ItemID}, {fieldType, &typ}, {fieldTime, &ts}, {fieldQuantity, &qty}, {fieldWeight, &w}} {
		if *f.dst, err = str(f.k); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return event.Event{}, errors.Join(errs...)
	}
	t, err := strconv.ParseUint(typ, 10, 8)
	if err != nil || !event.Type(t).Valid() {
		return event.Event{}, fmt.Errorf("bad event type %q", typ)
	}
	e.Type = event.Type(t)
	msTime, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return event.Event{}, fmt.Errorf("bad time %q", ts)
	}
	e.Time = time.UnixMilli(msTime).UTC()
	q, err := strconv.ParseInt(qty, 10, 32)
	if err != nil {
		return event.Event{}, fmt.Errorf("bad quantity %q", qty)
	}
	e.Quantity = int32(q)
	wf, err := strconv.ParseFloat(w, 32)
	if err != nil {
		return event.Event{}, fmt.Errorf("bad weight %q", w)
	}
	e.Weight = float32(wf)
	return e, nil
}
