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
	nowMs := s.cfg.Now().UnixMilli()
	current, past := s.pastBuckets(nowMs)
	pastTTL, factor, weights := s.decay(nowMs, current, len(past))
	keys := make([]string, 0, 2+len(past))
	keys = append(keys, s.popularityKey(current)+":past", s.popularityKey(current))
	keys = append(keys, past...)
	args := make([]any, 0, 3+len(weights))
	args = append(args, pastTTL, factor, strconv.Itoa(n-1))
	args = append(args, weights...)
	res, err := popularScript.Run(ctx, s.rdb, keys, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("popular items: %w", err)
	}
	return parseScores("popular items", res)
}

// pastBuckets returns the start of the current bucket, its key, and the keys
// of the past buckets in the window, newest first.
func (s *Store) pastBuckets(nowMs int64) (current int64, keys []string) {
	cfg := s.cfg
	bucketMs := cfg.PopularityBucket.Milliseconds()
	nb := bucketCount(cfg.PopularityWindow, cfg.PopularityBucket)
	current = floorDiv(nowMs, bucketMs) * bucketMs
	keys = make([]string, 0, nb-1)
	for i := int64(1); i < nb; i++ {
		keys = append(keys, s.popularityKey(current-i*bucketMs))
	}
	return current, keys
}

// decay returns what popularScript and popularityOfScript share: the TTL of
// the cached weighted sum of the past buckets (until the current bucket
// ends), the decay of the current bucket since it began, and the weight of
// each of the nPast past buckets (newest first) relative to the current
// bucket's start.
func (s *Store) decay(nowMs, current int64, nPast int) (pastTTL, factor string, weights []any) {
	bucketMs := s.cfg.PopularityBucket.Milliseconds()
	halfLifeMs := float64(s.cfg.PopularityHalfLife.Milliseconds())
	weights = make([]any, nPast)
	for i := range weights {
		weights[i] = strconv.FormatFloat(math.Exp2(-float64(int64(i+1)*bucketMs)/halfLifeMs), 'g', -1, 64)
	}
	return strconv.FormatInt(current+bucketMs-nowMs, 10),
		strconv.FormatFloat(math.Exp2(-float64(nowMs-current)/halfLifeMs), 'g', -1, 64),
		weights
}

// Trending returns up to n items whose popularity rose: an item's score is
// the ratio of its rate (Σ Weighting.Base per hour) over the last
// TrendingWindow to its rate over the whole PopularityWindow, each plus
// TrendingPrior,
//
//	(short/shortHours + prior) / (whole/wholeHours + prior),
//
// where both windows end now and include the current, partial bucket. Only
// items with at least TrendingMinWeight in the short window and a ratio
// above 1 are returned, best first. Like Popular, the unweighted sum of the
// past buckets is cached in Redis for the lifetime of the current bucket;
// a call costs time in proportion to the items active in the short window.
// Callers on a request path should cache the result for a few seconds.
func (s *Store) Trending(ctx context.Context, n int) ([]ItemScore, error) {
	if n < 1 {
		return nil, fmt.Errorf("trending items: n must be >= 1, got %d", n)
	}
	cfg := s.cfg
	nowMs := cfg.Now().UnixMilli()
	bucketMs := cfg.PopularityBucket.Milliseconds()
	current, past := s.pastBuckets(nowMs)
	elapsed := float64(max(nowMs-current, 1)) / float64(time.Hour.Milliseconds()) // the current bucket so far
	bucketH := float64(bucketMs) / float64(time.Hour.Milliseconds())
	shortPast := bucketCount(cfg.TrendingWindow, cfg.PopularityBucket) - 1
	keys := make([]string, 0, 4+len(past))
	keys = append(keys, s.popularityKey(current)+":long", s.popularityKey(current), s.trendScratch1, s.trendScratch2)
	keys = append(keys, past...)
	args := []any{
		strconv.FormatInt(current+bucketMs-nowMs, 10),
		strconv.Itoa(n - 1),
		strconv.FormatInt(shortPast, 10),
		strconv.FormatFloat(elapsed+float64(shortPast)*bucketH, 'g', -1, 64),
		strconv.FormatFloat(elapsed+float64(len(past))*bucketH, 'g', -1, 64),
		strconv.FormatFloat(cfg.TrendingPrior, 'g', -1, 64),
		strconv.FormatFloat(cfg.TrendingMinWeight, 'g', -1, 64),
	}
	res, err := trendingScript.Run(ctx, s.rdb, keys, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("trending items: %w", err)
	}
	return parseScores("trending items", res)
}

// PopularityOf returns the decayed popularity of each item (the score
// Popular would give it; 0 for an item without events in the window), in
// the order of ids, in one round trip.
func (s *Store) PopularityOf(ctx context.Context, ids []string) ([]float64, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	nowMs := s.cfg.Now().UnixMilli()
	current, past := s.pastBuckets(nowMs)
	pastTTL, factor, weights := s.decay(nowMs, current, len(past))
	keys := make([]string, 0, 2+len(past))
	keys = append(keys, s.popularityKey(current)+":past", s.popularityKey(current))
	keys = append(keys, past...)
	args := make([]any, 0, 3+len(ids)+len(weights))
	args = append(args, pastTTL, factor, strconv.Itoa(len(ids)))
	for _, id := range ids {
		args = append(args, id)
	}
	args = append(args, weights...)
	res, err := popularityOfScript.Run(ctx, s.rdb, keys, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("popularity of %d items: %w", len(ids), err)
	}
	if len(res) != len(ids) {
		return nil, fmt.Errorf("popularity of %d items: %d answers", len(ids), len(res))
	}
	out := make([]float64, len(res))
	for i, v := range res {
		if out[i], err = strconv.ParseFloat(v, 64); err != nil {
			return nil, fmt.Errorf("popularity of %q: %w", ids[i], err)
		}
	}
	return out, nil
}

// parseScores reads a member, score, member, score, ... reply.
func parseScores(what string, res []string) ([]ItemScore, error) {
	if len(res)%2 != 0 {
		return nil, fmt.Errorf("%s: odd reply length %d", what, len(res))
	}
	out := make([]ItemScore, len(res)/2)
	for i := range out {
		score, err := strconv.ParseFloat(res[2*i+1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: score of %q: %w", what, res[2*i], err)
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
//
// Entries name their user by pseudonym; each page's new pseudonyms are
// resolved in one round trip, and an entry whose pseudonym no longer maps
// to a user (the user was deleted, or expired) is skipped. Entries written
// before pseudonyms (with the plain user id) are skipped when the user was
// deleted after they were recorded (see DeletedUsers).
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
	users := newResolver(s)
	for {
		msgs, err := s.rdb.XRangeN(ctx, s.stream, start, end, readPage).Result()
		if err != nil {
			return fmt.Errorf("read event stream from %s: %w", start, err)
		}
		events := make([]event.Event, len(msgs))
		pns := make([]string, len(msgs))
		for i, m := range msgs {
			if events[i], pns[i], err = parseStreamEvent(m.Values); err != nil {
				return fmt.Errorf("event stream entry %s: %w", m.ID, err)
			}
		}
		if err := users.resolve(ctx, pns); err != nil {
			return err
		}
		for i, m := range msgs {
			e := events[i]
			if pns[i] != "" {
				if e.UserID = users.user[pns[i]]; e.UserID == "" {
					continue // deleted or expired
				}
			} else if deleted.hides(e.UserID, m.ID) {
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
	fieldID        = "i"
	fieldPseudonym = "n" // the user's pseudonym (entries written since pseudonyms)
	fieldUser      = "u" // the user id (entries written before pseudonyms)
	fieldItem      = "p"
	fieldType      = "t"
	fieldTime      = "s"
	fieldQuantity  = "q"
	fieldWeight    = "w"
)

// parseStreamEvent reads an entry: the event, its UserID empty when the
// entry names the user by pseudonym (returned), set when it is an entry
// from before pseudonyms.
func parseStreamEvent(v map[string]any) (event.Event, string, error) {
	pn, _ := v[fieldPseudonym].(string)
	e, err := parseStreamFields(v, pn == "")
	return e, pn, err
}

func parseStreamFields(v map[string]any, withUser bool) (event.Event, error) {
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
		if f.k == fieldUser && !withUser {
			continue
		}
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
	if err != nil || math.IsNaN(wf) || math.IsInf(wf, 0) || wf < 0 {
		return event.Event{}, fmt.Errorf("bad weight %q", w)
	}
	e.Weight = float32(wf)
	return e, nil
}
