// Package attribution links what users do to the answers that showed them
// the items: it keeps a compact record of every answer (user, items in
// order, placement, source, model version, experiment arm, time) and
// matches later views, carts and purchases to it.
//
// Records are written off the request path: Enqueue hands an answer to a
// bounded queue that Run drains in pipelined batches, and drops (and
// counts) answers when the queue is full, so a slow Redis never slows an
// answer. A user's records live in two keys of the user's hash slot, at
// most Config.PerUserCap answers, none older than the attribution window,
// and expire with it.
//
// An answer without a user (SimilarItems, BoughtTogether: an item page's
// answer) is kept apart, in one key of its own named by its id and expiring
// with the window; it names no user. Such answers attribute only directly:
// an event whose id is not among its user's records is looked up there, and
// counts, credited to the event's user, when the answer showed the item
// within the window. Last touch never picks them.
//
// An event attributes directly, by the recommendation id it carries, or,
// when it carries none, to the most recent answer that showed the item to
// the user within the window (last touch). An unknown or expired id, an id
// of another user's answer (it is not among this user's records) and an id
// whose answer did not show the item leave the event unattributed. Each
// (answer, item, event type) counts once: the record keeps marks.
package attribution

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/redisconn"
)

// Answer is what the server answered one user, or, without UserID, an
// item page (SimilarItems, BoughtTogether).
type Answer struct {
	ID           string // the recommendation id
	UserID       string // empty: an item page's answer, attributed by its id only
	Placement    string
	Source       string // the answer's source, e.g. "personalized"
	ModelVersion string
	Experiment   string // empty when the user is in no experiment
	Arm          string
	Time         time.Time
	Items        []string // in answer order; position = index + 1
}

// Dims are the dimensions of an answer that metrics are kept by.
type Dims struct {
	Placement, Source, ModelVersion, Experiment, Arm string
}

// Dims returns the answer's metric dimensions.
func (a Answer) Dims() Dims {
	return Dims{Placement: a.Placement, Source: a.Source, ModelVersion: a.ModelVersion, Experiment: a.Experiment, Arm: a.Arm}
}

// Touch is an event to attribute.
type Touch struct {
	UserID           string
	ItemID           string
	Type             event.Type // View, AddToCart or Purchase; others are ignored
	Time             time.Time
	RecommendationID string // empty: last touch
	Quantity         int32  // 0 means 1
}

// Hit is an attributed event: the answer it counts for.
type Hit struct {
	Touch
	AnswerID string
	Position int // 1-based position of the item in the answer
	Dims     Dims
	Answered time.Time // when the answer was given
}

// Result is what Attribute did with a batch of touches.
type Result struct {
	Hits         []Hit // counted now, once per (answer, item, type)
	Unattributed int   // no answer of the user within the window showed the item
	Repeated     int   // the (answer, item, type) had been counted before
}

// Defaults of Config.
const (
	DefaultWindow     = 7 * 24 * time.Hour
	DefaultPerUserCap = 100
	// DefaultPageWindow is short: an item page's answers have no user and
	// no cap, one Redis key each (about 700 bytes), so Redis holds every
	// such answer of the window — at 100 a second, 250 MB for an hour but
	// 43 GB for the 7 days Recommend's answers are kept.
	DefaultPageWindow = time.Hour
)

// Config tunes a Store; zero fields take the defaults.
type Config struct {
	Prefix string // key prefix, the profile store's
	// Window is how long after an answer an event still counts for it,
	// and how long records are kept. Default 7 days.
	Window time.Duration
	// PageWindow is the Window of an item page's answers (SimilarItems,
	// BoughtTogether): how long they are kept and attribute. Default 1 hour.
	PageWindow time.Duration
	// PerUserCap bounds the answers kept per user (the newest). Default 100.
	PerUserCap int
	// MaxItems bounds the items kept per answer (the first). Default 100.
	MaxItems int
	// QueueSize bounds the answers waiting to be written; default 8192.
	QueueSize int
	// PageQueueShare bounds the item pages' answers (no user, no cap)
	// among them, so that a flood of them cannot make users' answers drop:
	// default (and when not below QueueSize) a quarter of QueueSize.
	PageQueueShare int
	// Skew is how far an answer may lie after the event's time and still
	// count (clocks of shop and server differ). Default 5 minutes.
	Skew time.Duration
	Now  func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.PageWindow <= 0 {
		c.PageWindow = DefaultPageWindow
	}
	if c.PerUserCap <= 0 {
		c.PerUserCap = DefaultPerUserCap
	}
	if c.MaxItems <= 0 {
		c.MaxItems = 100
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 8192
	}
	if c.PageQueueShare <= 0 || c.PageQueueShare >= c.QueueSize {
		c.PageQueueShare = max(1, c.QueueSize/4)
	}
	if c.Skew <= 0 {
		c.Skew = 5 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Written is told about every batch of answer records written, to count
// them (answers, items shown) in the metrics.
type Written func(ctx context.Context, answers []Answer)

// Store keeps answer records in Redis. It is safe for concurrent use.
type Store struct {
	rdb     redis.UniversalClient
	cfg     Config
	queue   chan queued
	written Written
	dropped atomic.Int64
	failed  atomic.Int64
	// pageQueued counts the item pages' answers in the queue;
	// droppedPages the ones dropped (also counted in dropped).
	pageQueued   atomic.Int64
	droppedPages atomic.Int64
}

// queued is an answer to write, or a flush marker (done set).
type queued struct {
	a    Answer
	done chan struct{}
}

// NewStore returns a Store; written (may be nil) is called after each
// batch of records is written.
func NewStore(rdb redis.UniversalClient, cfg Config, written Written) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("attribution store: nil redis client")
	}
	cfg = cfg.withDefaults()
	return &Store{rdb: rdb, cfg: cfg, queue: make(chan queued, cfg.QueueSize), written: written}, nil
}

// Config returns the configuration in effect.
func (s *Store) Config() Config { return s.cfg }

// Dropped is how many answers Enqueue dropped because the queue was full.
func (s *Store) Dropped() int64 { return s.dropped.Load() }

// DroppedPages is how many of them were item pages' answers (their share
// of the queue was full).
func (s *Store) DroppedPages() int64 { return s.droppedPages.Load() }

// Failed is how many answer records could not be written (Redis errors).
func (s *Store) Failed() int64 { return s.failed.Load() }

// Enqueue hands an answer to the writer without waiting. It reports false
// (and counts a drop) when the queue is full. Answers without an id or
// without items are not kept; an answer without a user is kept as an item
// page's answer (see the package comment).
func (s *Store) Enqueue(a Answer) bool {
	if len(a.Items) == 0 || a.ID == "" {
		return true
	}
	page := a.UserID == ""
	if page && s.pageQueued.Add(1) > int64(s.cfg.PageQueueShare) {
		s.dropPage()
		return false
	}
	select {
	case s.queue <- queued{a: a}:
		return true
	default:
		if page {
			s.dropPage()
		} else {
			s.dropped.Add(1)
		}
		return false
	}
}

// dropPage counts a dropped item page's answer that had been counted in
// pageQueued.
func (s *Store) dropPage() {
	s.pageQueued.Add(-1)
	s.droppedPages.Add(1)
	s.dropped.Add(1)
}

// dequeued is told about every answer taken from the queue.
func (s *Store) dequeued(a Answer) {
	if a.UserID == "" {
		s.pageQueued.Add(-1)
	}
}

// Flush waits until every answer enqueued before it has been written (or
// failed), or ctx ends. It needs Run running.
func (s *Store) Flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case s.queue <- queued{done: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxBatch bounds the records written in one pipeline.
const maxBatch = 256

// Run writes enqueued answers until ctx ends, in batches of what has
// queued up (one pipelined round trip each). Errors are counted (Failed),
// not returned: records are best effort. When ctx ends, Run writes what is
// still queued (under DrainTimeout) before it returns, so the answers of a
// server that stops are counted: stop Run after the server has drained.
func (s *Store) Run(ctx context.Context) error {
	// A write started is finished (each is bounded by its own timeout),
	// even when ctx ends meanwhile.
	wctx := context.WithoutCancel(ctx)
	batch := make([]Answer, 0, maxBatch)
	var flushes []chan struct{}
	for {
		var q queued
		select {
		case <-ctx.Done():
			s.drain(wctx)
			return nil
		case q = <-s.queue:
		}
		batch, flushes = s.take(q, batch[:0], flushes[:0])
		if len(batch) > 0 {
			s.write(wctx, batch)
		}
		for _, d := range flushes {
			close(d)
		}
	}
}

// DrainTimeout bounds how long a stopping Run spends writing the answers
// still queued.
const DrainTimeout = 5 * time.Second

// drain writes what is queued, batch by batch, until the queue is empty or
// DrainTimeout has passed; what is left is counted as dropped.
func (s *Store) drain(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, DrainTimeout)
	defer cancel()
	batch := make([]Answer, 0, maxBatch)
	var flushes []chan struct{}
	for ctx.Err() == nil {
		var q queued
		select {
		case q = <-s.queue:
		default:
			return
		}
		batch, flushes = s.take(q, batch[:0], flushes[:0])
		if len(batch) > 0 {
			s.write(ctx, batch)
		}
		for _, d := range flushes {
			close(d)
		}
	}
	for {
		select {
		case q := <-s.queue:
			switch {
			case q.done != nil:
				close(q.done)
			case q.a.UserID == "":
				s.dropPage()
			default:
				s.dropped.Add(1)
			}
		default:
			return
		}
	}
}

// take adds q and what else is queued (up to maxBatch answers) to batch,
// and the flush markers among them to flushes.
func (s *Store) take(q queued, batch []Answer, flushes []chan struct{}) ([]Answer, []chan struct{}) {
	add := func(q queued) {
		if q.done != nil {
			flushes = append(flushes, q.done)
		} else {
			s.dequeued(q.a)
			batch = append(batch, q.a)
		}
	}
	add(q)
	for len(batch) < maxBatch {
		select {
		case q = <-s.queue:
			add(q)
		default:
			return batch, flushes
		}
	}
	return batch, flushes
}

// writeAttempts bounds the tries of an answer record: a busy Redis that
// misses the client's read timeout, or a connection lost mid-batch, is
// worth another try — an answer whose record is lost is never counted, and
// under load the demo's experiment lost 38 of 400 that way. The record
// script is idempotent (the same id, time and record), so a try whose reply
// was lost after Redis ran it does no harm.
const writeAttempts = 3

// writeBackoff is the pause before the second try; it doubles.
const writeBackoff = 100 * time.Millisecond

func (s *Store) write(ctx context.Context, batch []Answer) {
	calls := make([]*redisconn.ScriptCall, len(batch))
	var buf []byte
	for i, a := range batch {
		buf = encodeRecord(buf[:0], a, s.cfg.MaxItems)
		if a.UserID == "" {
			calls[i] = &redisconn.ScriptCall{Script: recordPageScript, Keys: []string{s.pageKey(a.ID)}, Args: []any{
				string(buf), s.cfg.PageWindow.Milliseconds(),
			}}
			continue
		}
		k := s.keys(a.UserID)
		t := a.Time.UnixMilli()
		calls[i] = &redisconn.ScriptCall{Script: recordScript, Keys: []string{k.idx, k.rec}, Args: []any{
			a.ID, t, string(buf), s.cfg.PerUserCap, s.cfg.Now().Add(-s.cfg.Window).UnixMilli(), s.cfg.Window.Milliseconds(),
		}}
	}
	pending := calls
	for attempt, pause := 1, writeBackoff; ; attempt, pause = attempt+1, 2*pause {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		redisconn.RunScripts(actx, s.rdb, pending...)
		cancel()
		var again []*redisconn.ScriptCall
		for _, c := range pending {
			if err := c.Cmd.Err(); err != nil && (redisconn.Unavailable(err) || errors.Is(err, context.DeadlineExceeded)) {
				again = append(again, c)
			}
		}
		if len(again) == 0 || attempt == writeAttempts || !pauseFor(ctx, pause) {
			break
		}
		pending = again
	}
	ok := batch[:0:0]
	for i, c := range calls {
		if c.Cmd.Err() != nil {
			s.failed.Add(1)
			continue
		}
		ok = append(ok, batch[i])
	}
	if s.written != nil && len(ok) > 0 {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		s.written(wctx, ok)
	}
}

// pauseFor waits d unless ctx ends first (false).
func pauseFor(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

type keys struct{ idx, rec string }

// keys are tagged by the user like the profile's, with suffixes no profile
// key uses.
func (s *Store) keys(userID string) keys {
	base := s.cfg.Prefix + ":u:{" + redisconn.EscapeTag(userID) + "}:"
	return keys{idx: base + "ans", rec: base + "ansrec"}
}

// pageKey is the key of an item page's answer: tagged by the answer's id,
// so the answers spread over a cluster's slots.
func (s *Store) pageKey(id string) string {
	return s.cfg.Prefix + ":a:{" + redisconn.EscapeTag(id) + "}"
}

// PageAnswerKey is the key an item page's answer with the given id is kept
// in (for tests and operators; see docs/storage.md).
func (s *Store) PageAnswerKey(id string) string { return s.pageKey(id) }

// UserKeys lists the keys a user's records live in (for DeleteUser).
func (s *Store) UserKeys(userID string) []string {
	k := s.keys(userID)
	return []string{k.idx, k.rec}
}

// DeleteUser removes a user's answer records and reports how many keys
// existed.
func (s *Store) DeleteUser(ctx context.Context, userID string) (int, error) {
	n, err := s.rdb.Del(ctx, s.UserKeys(userID)...).Result()
	if err != nil {
		return 0, fmt.Errorf("delete answer records of %q: %w", userID, err)
	}
	return int(n), nil
}

// Attributable reports whether events of type t are attributed.
func Attributable(t event.Type) bool {
	return t == event.View || t == event.AddToCart || t == event.Purchase
}

// Attribute matches touches to the answers of their users, marks what it
// counts, and returns the hits; one script per user, in one pipelined round
// trip. Touches with an id that none of their user's answers matched are
// then looked up among the item pages' answers, one script per id, in a
// second round trip (only when there are such touches). Touches of other
// types are ignored. On an error nothing is returned; the marks of the
// scripts that ran stay (so a retry does not count twice what was counted).
func (s *Store) Attribute(ctx context.Context, touches []Touch) (Result, error) {
	type userTouches struct {
		id  string
		idx []int
	}
	var users []userTouches
	index := map[string]int{}
	for i, t := range touches {
		if !Attributable(t.Type) {
			continue
		}
		u, ok := index[t.UserID]
		if !ok {
			u = len(users)
			index[t.UserID] = u
			users = append(users, userTouches{id: t.UserID})
		}
		users[u].idx = append(users[u].idx, i)
	}
	if len(users) == 0 {
		return Result{}, nil
	}
	calls := make([]*redisconn.ScriptCall, len(users))
	for u, ut := range users {
		k := s.keys(ut.id)
		args := make([]any, 0, 2+4*len(ut.idx))
		args = append(args, s.cfg.Window.Milliseconds(), s.cfg.Skew.Milliseconds())
		for _, i := range ut.idx {
			t := touches[i]
			at := t.Time
			if at.IsZero() {
				at = s.cfg.Now()
			}
			args = append(args, t.RecommendationID, t.ItemID, typeCode(t.Type), at.UnixMilli())
		}
		calls[u] = &redisconn.ScriptCall{Script: attributeScript, Keys: []string{k.idx, k.rec}, Args: args}
	}
	redisconn.RunScripts(ctx, s.rdb, calls...)
	var res Result
	var errs []error
	pages := map[string][]int{} // recommendation id -> touches to look up among the item pages' answers
	var pageIDs []string
	for u, c := range calls {
		out, err := c.Cmd.Slice()
		if err == nil && len(out) != 3*len(users[u].idx) {
			err = fmt.Errorf("script returned %d values for %d events", len(out), len(users[u].idx))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("attribute events of user %q: %w", users[u].id, err))
			continue
		}
		for j, i := range users[u].idx {
			id, _ := out[3*j].(string)
			pos, _ := out[3*j+1].(int64)
			head, _ := out[3*j+2].(string)
			switch {
			case (id == "" || pos == 0) && touches[i].RecommendationID != "":
				rid := touches[i].RecommendationID
				if _, ok := pages[rid]; !ok {
					pageIDs = append(pageIDs, rid)
				}
				pages[rid] = append(pages[rid], i)
			case id == "" || pos == 0:
				res.Unattributed++
			case pos < 0:
				res.Repeated++
			default:
				d, answered, err := decodeHeader(head)
				if err != nil {
					errs = append(errs, fmt.Errorf("answer %q of user %q: %w", id, users[u].id, err))
					continue
				}
				res.Hits = append(res.Hits, Hit{Touch: touches[i], AnswerID: id, Position: int(pos), Dims: d, Answered: answered})
			}
		}
	}
	if len(pageIDs) > 0 {
		for _, idx := range pages {
			slices.Sort(idx) // in batch order: the first sender of an (answer, item, type) is credited
		}
		if err := s.attributePages(ctx, touches, pageIDs, pages, &res); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return Result{}, errors.Join(errs...)
	}
	return res, nil
}

// attributePages looks touches up among the item pages' answers: pages maps
// each id (in the order of ids) to the touches that carry it.
func (s *Store) attributePages(ctx context.Context, touches []Touch, ids []string, pages map[string][]int, res *Result) error {
	calls := make([]*redisconn.ScriptCall, len(ids))
	for j, id := range ids {
		idx := pages[id]
		args := make([]any, 0, 3+3*len(idx))
		args = append(args, id, s.cfg.PageWindow.Milliseconds(), s.cfg.Skew.Milliseconds())
		for _, i := range idx {
			t := touches[i]
			at := t.Time
			if at.IsZero() {
				at = s.cfg.Now()
			}
			args = append(args, t.ItemID, typeCode(t.Type), at.UnixMilli())
		}
		calls[j] = &redisconn.ScriptCall{Script: attributePageScript, Keys: []string{s.pageKey(id)}, Args: args}
	}
	redisconn.RunScripts(ctx, s.rdb, calls...)
	var errs []error
	for j, c := range calls {
		idx := pages[ids[j]]
		out, err := c.Cmd.Slice()
		if err == nil && len(out) != 3*len(idx) {
			err = fmt.Errorf("script returned %d values for %d events", len(out), len(idx))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("attribute events to item-page answer %q: %w", ids[j], err))
			continue
		}
		for k, i := range idx {
			id, _ := out[3*k].(string)
			pos, _ := out[3*k+1].(int64)
			head, _ := out[3*k+2].(string)
			switch {
			case id == "" || pos == 0:
				res.Unattributed++
			case pos < 0:
				res.Repeated++
			default:
				d, answered, err := decodeHeader(head)
				if err != nil {
					errs = append(errs, fmt.Errorf("item-page answer %q: %w", id, err))
					continue
				}
				res.Hits = append(res.Hits, Hit{Touch: touches[i], AnswerID: id, Position: int(pos), Dims: d, Answered: answered})
			}
		}
	}
	return errors.Join(errs...)
}

func typeCode(t event.Type) int {
	switch t {
	case event.View:
		return 1
	case event.AddToCart:
		return 2
	}
	return 3
}

// encodeRecord appends the record of a: the header (time, then the
// dimensions), then at most maxItems items, each length-prefixed.
func encodeRecord(dst []byte, a Answer, maxItems int) []byte {
	var head []byte
	head = strconv.AppendInt(head, a.Time.UnixMilli(), 10)
	for _, f := range []string{a.Placement, a.Source, a.ModelVersion, a.Experiment, a.Arm} {
		head = append(head, ' ')
		head = appendLP(head, f)
	}
	dst = strconv.AppendInt(dst, int64(len(head)), 10)
	dst = append(dst, ':')
	dst = append(dst, head...)
	for i, it := range a.Items {
		if i == maxItems {
			break
		}
		dst = appendLP(dst, it)
	}
	return dst
}

func appendLP(dst []byte, s string) []byte {
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, ':')
	return append(dst, s...)
}

// decodeHeader reads what encodeRecord wrote as the header.
func decodeHeader(h string) (Dims, time.Time, error) {
	sp := strings.IndexByte(h, ' ')
	if sp < 0 {
		return Dims{}, time.Time{}, errors.New("malformed answer record")
	}
	ms, err := strconv.ParseInt(h[:sp], 10, 64)
	if err != nil {
		return Dims{}, time.Time{}, errors.New("malformed answer time")
	}
	rest := h[sp:]
	var f [5]string
	for i := range f {
		if len(rest) == 0 || rest[0] != ' ' {
			return Dims{}, time.Time{}, errors.New("malformed answer record")
		}
		rest = rest[1:]
		c := strings.IndexByte(rest, ':')
		if c < 0 {
			return Dims{}, time.Time{}, errors.New("malformed answer record")
		}
		n, err := strconv.Atoi(rest[:c])
		if err != nil || n < 0 || c+1+n > len(rest) {
			return Dims{}, time.Time{}, errors.New("malformed answer record")
		}
		f[i], rest = rest[c+1:c+1+n], rest[c+1+n:]
		if !utf8.ValidString(f[i]) {
			return Dims{}, time.Time{}, errors.New("malformed answer record")
		}
	}
	return Dims{Placement: f[0], Source: f[1], ModelVersion: f[2], Experiment: f[3], Arm: f[4]}, time.UnixMilli(ms).UTC(), nil
}
