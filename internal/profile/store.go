package profile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/redisconn"
)

// Store keeps user profiles, the global event stream and popularity counters
// in Redis. It is safe for concurrent use.
type Store struct {
	rdb redis.UniversalClient
	cfg Config

	stream, globalDedup                  string // global keys, all tagged {g}
	optOut, trendScratch1, trendScratch2 string
	deleted                              string // users deleted, for ReadEvents
	deadPseudonyms                       string // pseudonyms Delete destroyed just now
	seen                                 string // user -> last seen, for segment selection
}

// NewStore returns a Store on rdb. Zero fields of cfg take their defaults;
// an invalid setting is an error. Scripts are loaded into Redis on first use.
func NewStore(rdb redis.UniversalClient, cfg Config) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("profile store: nil redis client")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("profile store config: %w", err)
	}
	g := cfg.Prefix + ":{g}:"
	return &Store{
		rdb:            rdb,
		cfg:            cfg,
		stream:         g + "events",
		globalDedup:    g + "eids",
		optOut:         g + "optout",
		trendScratch1:  g + "trend:scratch1",
		trendScratch2:  g + "trend:scratch2",
		deleted:        g + "deleted",
		deadPseudonyms: g + "deadpn",
		seen:           g + "seen",
	}, nil
}

// Config returns the configuration in effect, defaults filled in.
func (s *Store) Config() Config { return s.cfg }

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}

// Suffixes of the per-user keys. None is a suffix of another, so a key name
// ends in exactly one of them and two users' keys can never coincide.
const (
	suffixHistory   = "hist"
	suffixPurchased = "buy"
	suffixMeta      = "meta"
	suffixDedup     = "eids"
	suffixImpress   = "imp"
	suffixPush      = "push"
	suffixOrders    = "ord"
	suffixDismissed = "dis"
	suffixSearch    = "srch"
	suffixPseudonym = "pn"
)

// Fields of the meta hash.
const (
	metaFirstSeen = "f"
	metaLastSeen  = "l"
	metaPurchases = "p"
	metaOptedOut  = "o"
)

type userKeys struct{ hist, buy, meta, eids, imp, push, ord, dis, srch, pn string }

func (s *Store) keysOf(userID string) userKeys {
	base := s.cfg.Prefix + ":u:{" + redisconn.EscapeTag(userID) + "}:"
	return userKeys{
		hist: base + suffixHistory,
		buy:  base + suffixPurchased,
		meta: base + suffixMeta,
		eids: base + suffixDedup,
		imp:  base + suffixImpress,
		push: base + suffixPush,
		ord:  base + suffixOrders,
		dis:  base + suffixDismissed,
		srch: base + suffixSearch,
		pn:   base + suffixPseudonym,
	}
}

func (k userKeys) all() []string {
	return []string{k.hist, k.buy, k.meta, k.eids, k.imp, k.push, k.ord, k.dis, k.srch, k.pn}
}

// Members of the dismissal set: a dismissed item, a dismissed category, an
// item rated at or below event.LowRating.
const (
	dismissItem     = "i:"
	dismissCategory = "c:"
	dismissLowRated = "r:"
)

// UserKeys lists every key name a user can have. They share one hash tag.
func (s *Store) UserKeys(userID string) []string {
	return s.keysOf(userID).all()
}

// RecordResult counts the events of a Record call: Accepted were new,
// Duplicates had an event id the store already remembered (a retry).
// Fresh[i] tells whether events[i] was new (impressions and pushes, which
// have no dedup, always are).
type RecordResult struct {
	Accepted, Duplicates int
	Fresh                []bool
}

// Record stores a batch of events, of any number of users, in two pipelined
// round trips: first one script per user applies the user's new events to
// the profile and returns the user's stream pseudonym, then one script
// appends the events to the global stream (under the pseudonyms) and the
// popularity counters, with the pseudonyms' reverse mappings. Both sides
// are idempotent by event id on their own, so when a call fails part-way,
// retrying the same batch completes what is missing without counting
// anything twice.
//
// A zero Time means now (the Store's clock). Events must be valid; an
// invalid one fails the whole call before anything is written. On any other
// error part of the batch may have been stored; retry it.
func (s *Store) Record(ctx context.Context, events []event.Event) (RecordResult, error) {
	if len(events) == 0 {
		return RecordResult{}, nil
	}
	now := s.cfg.Now()
	for i, e := range events {
		if err := validateEvent(e); err != nil {
			return RecordResult{}, fmt.Errorf("event %d (id %q): %w", i, e.ID, err)
		}
	}
	b := s.newBatch(events, now)
	calls := b.userCalls(s)
	redisconn.RunScripts(ctx, s.rdb, calls...)

	res := RecordResult{Fresh: make([]bool, len(events))}
	var errs []error
	pseudonyms := make(map[string]string, len(calls)) // user -> pseudonym, users whose script ran
	for u, c := range calls {
		flags, pn, err := parseUserReply(c.Cmd, len(b.users[u].events))
		if err != nil {
			errs = append(errs, fmt.Errorf("record events of user %q: %w", b.users[u].id, err))
			continue
		}
		pseudonyms[b.users[u].id] = pn
		for k, f := range flags {
			if f == 1 {
				res.Accepted++
				res.Fresh[b.users[u].events[k]] = true
			} else {
				res.Duplicates++
			}
		}
	}
	// The stream only gets events whose user's script ran: the pseudonym
	// comes from it. The others are retried as a whole by the caller.
	if global := b.globalCall(s, pseudonyms); len(global) > 0 {
		redisconn.RunScripts(ctx, s.rdb, global...)
		for _, c := range global {
			if err := c.Cmd.Err(); err != nil {
				errs = append(errs, fmt.Errorf("record events in stream and popularity: %w", err))
				break
			}
		}
	}
	if len(errs) > 0 {
		return RecordResult{}, errors.Join(errs...)
	}
	return res, nil
}

// parseUserReply reads userScript's reply: n flags, then the pseudonym.
func parseUserReply(cmd *redis.Cmd, n int) ([]int64, string, error) {
	vals, err := cmd.Slice()
	if err != nil {
		return nil, "", err
	}
	if len(vals) != n+1 {
		return nil, "", fmt.Errorf("script returned %d values for %d events", len(vals), n)
	}
	flags := make([]int64, n)
	for i := range flags {
		f, ok := vals[i].(int64)
		if !ok {
			return nil, "", fmt.Errorf("script returned %T as flag %d", vals[i], i)
		}
		flags[i] = f
	}
	pn, ok := vals[n].(string)
	if !ok {
		return nil, "", fmt.Errorf("script returned %T as the pseudonym", vals[n])
	}
	return flags, pn, nil
}

func validateEvent(e event.Event) error {
	ids := []struct{ name, v string }{{"event id", e.ID}, {"user id", e.UserID}}
	// A search has no item; a dismissal has an item or a category.
	if e.Type != event.Search && (e.Type != event.NotInterested || e.ItemID != "") {
		ids = append(ids, struct{ name, v string }{"item id", e.ItemID})
	}
	for _, f := range ids {
		if err := event.CheckID(f.v); err != nil {
			return fmt.Errorf("%s %w", f.name, err)
		}
	}
	switch {
	case e.Type == event.Search && e.ItemID != "":
		return errors.New("a search has no item id")
	case e.Type == event.NotInterested && e.ItemID == "" && e.Category == "":
		return errors.New("a not-interested event needs an item id or a category")
	case e.Type == event.Rating && !(e.Weight >= event.MinRating && e.Weight <= event.MaxRating):
		return fmt.Errorf("a rating must be %d to %d, got %v", event.MinRating, event.MaxRating, e.Weight)
	case !e.Type.Valid():
		return fmt.Errorf("unknown event type %d", e.Type)
	case e.Quantity < 0:
		return fmt.Errorf("quantity must be >= 0, got %d", e.Quantity)
	case math.IsNaN(float64(e.Weight)) || math.IsInf(float64(e.Weight), 0) || e.Weight < 0:
		return fmt.Errorf("weight must be a finite number >= 0, got %v", e.Weight)
	case e.Type == event.Custom && e.Weight == 0:
		return errors.New("a custom event needs a weight > 0")
	}
	return nil
}

// batch is a Record call's events grouped by user, times filled in.
type batch struct {
	now   time.Time
	all   []event.Event // in request order, zero times replaced by now
	users []userBatch   // in order of first appearance
}

type userBatch struct {
	id     string
	events []int // indexes into all, oldest first
}

func (s *Store) newBatch(events []event.Event, now time.Time) *batch {
	b := &batch{now: now, all: slices.Clone(events)}
	index := make(map[string]int)
	for i := range b.all {
		e := &b.all[i]
		if e.Time.IsZero() {
			e.Time = now
		}
		u, ok := index[e.UserID]
		if !ok {
			u = len(b.users)
			index[e.UserID] = u
			b.users = append(b.users, userBatch{id: e.UserID})
		}
		b.users[u].events = append(b.users[u].events, i)
	}
	for _, u := range b.users {
		// Oldest first, so LPUSH leaves the newest at the head of the list.
		slices.SortStableFunc(u.events, func(x, y int) int {
			return cmp.Compare(b.all[x].Time.UnixMilli(), b.all[y].Time.UnixMilli())
		})
	}
	return b
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// spend is what a purchase event adds to the user's spend: its quantity (0
// counts as 1, not capped) times the item's price from Config.Price now.
func (s *Store) spend(e event.Event) float64 {
	if s.cfg.Price == nil {
		return 0
	}
	p := s.cfg.Price(e.ItemID)
	if !(p > 0) || math.IsInf(p, 0) {
		return 0
	}
	return p * float64(max(e.Quantity, 1))
}

func msDur(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

func (b *batch) userCalls(s *Store) []*redisconn.ScriptCall {
	cfg := s.cfg
	calls := make([]*redisconn.ScriptCall, 0, len(b.users)+1)
	fixed := []any{
		ms(b.now),
		strconv.Itoa(cfg.HistoryCap - 1),
		strconv.Itoa(-(cfg.PurchasedCap + 1)),
		msDur(cfg.UserTTL),
		strconv.Itoa(-(cfg.DedupCap + 1)),
		strconv.FormatInt(b.now.Add(-cfg.DedupWindow).UnixMilli()-1, 10),
		msDur(min(cfg.DedupWindow, cfg.UserTTL)),
		strconv.Itoa(cfg.ImpressionKeep),
		strconv.Itoa(cfg.ImpressionCap),
		msDur(min(cfg.ImpressionWindow, cfg.UserTTL)),
		strconv.Itoa(-(cfg.PushCap + 1)),
		strconv.FormatInt(b.now.Add(-cfg.PushWindow).UnixMilli()-1, 10),
		msDur(min(cfg.PushWindow, cfg.UserTTL)),
		strconv.Itoa(-(cfg.OrderCap + 1)),
		strconv.FormatInt(b.now.Add(-cfg.UserTTL).UnixMilli()-1, 10),
		strconv.Itoa(-(cfg.DismissCap + 1)),
		strconv.FormatInt(b.now.Add(-cfg.NotInterestedTTL).UnixMilli(), 10),
		msDur(min(cfg.NotInterestedTTL, cfg.UserTTL)),
		strconv.Itoa(-(cfg.SearchCap + 1)),
	}
	pnTTL := msDur(s.pseudonymTTL())
	var buf []byte
	for _, u := range b.users {
		k := s.keysOf(u.id)
		args := make([]any, 0, len(fixed)+2+6*len(u.events))
		args = append(args, fixed...)
		candidate := ""
		if slices.ContainsFunc(u.events, func(i int) bool { return b.all[i].Type.Streamed() }) {
			candidate = newPseudonym()
		}
		args = append(args, candidate, pnTTL)
		for _, i := range u.events {
			e := b.all[i]
			kind, member, entry, value := "0", "", "", ""
			switch e.Type {
			case event.Purchase:
				kind, value = "1", strconv.FormatFloat(s.spend(e), 'g', -1, 64)
			case event.Impression:
				kind = "2" // neither history nor the dedup set: no entry, no member
			case event.Push:
				kind = "3" // the same
			case event.NotInterested:
				// No dedup needed: dismissing again only moves the time.
				kind, value = "4", dismissItem+e.ItemID
				if e.ItemID == "" {
					value = dismissCategory + e.Category
				}
			case event.Rating:
				kind, value = "5", dismissLowRated+e.ItemID // a click that also sets or clears a low rating
				if e.Weight <= event.LowRating {
					kind = "6"
				}
			case event.Search:
				kind, value = "7", e.Matches
			}
			if kind == "7" {
				member = dedupMember(e.UserID, e.ID) // deduplicated, but no history entry
			} else if kind != "2" && kind != "3" && kind != "4" {
				buf = appendEntry(buf[:0], e)
				member, entry = dedupMember(e.UserID, e.ID), string(buf)
			}
			args = append(args, member, ms(e.Time), kind, e.ItemID, entry, value)
		}
		calls = append(calls, &redisconn.ScriptCall{Script: userScript, Keys: k.all(), Args: args})
	}
	return calls
}

// globalCall is the batch's global script call followed by the reverse
// mappings of the pseudonyms it writes, or nothing when the batch has
// nothing for it: impressions and pushes are per-user state only (they
// carry no weight, and would multiply the training stream's size). Only
// events of users in pseudonyms (user -> pseudonym, "" for an opted-out
// user) are included.
func (b *batch) globalCall(s *Store, pseudonyms map[string]string) []*redisconn.ScriptCall {
	cfg := s.cfg
	bucketMs := cfg.PopularityBucket.Milliseconds()
	nb := bucketCount(cfg.PopularityWindow, cfg.PopularityBucket)
	nowMs := b.now.UnixMilli()
	current := floorDiv(nowMs, bucketMs) * bucketMs
	oldest := current - (nb-1)*bucketMs

	keys := []string{s.stream, s.globalDedup, s.optOut, s.seen, s.deadPseudonyms}
	var bucketTTLs []any
	bucketIndex := make(map[int64]int) // bucket start -> index in KEYS after the first five
	evArgs := make([]any, 0, 11*len(b.all))
	for _, e := range b.all {
		pn, ok := pseudonyms[e.UserID]
		if !e.Type.Streamed() || !ok {
			continue
		}
		idx := 0
		inc := cfg.Weighting.Base(e)
		if start := min(floorDiv(e.Time.UnixMilli(), bucketMs)*bucketMs, current); start >= oldest && inc > 0 {
			var ok bool
			if idx, ok = bucketIndex[start]; !ok {
				idx = len(bucketIndex) + 1
				bucketIndex[start] = idx
				keys = append(keys, s.popularityKey(start))
				// The bucket leaves the window when the current bucket
				// is nb widths after it.
				bucketTTLs = append(bucketTTLs, strconv.FormatInt(start+nb*bucketMs-nowMs, 10))
			}
		}
		evArgs = append(evArgs,
			dedupMember(e.UserID, e.ID), strconv.Itoa(idx), strconv.FormatFloat(inc, 'g', -1, 64))
		evArgs = append(appendStreamValues(evArgs, e), pn)
	}
	if len(evArgs) == 0 {
		return nil
	}
	minID := ""
	if cfg.StreamMaxAge > 0 {
		minID = ms(b.now.Add(-cfg.StreamMaxAge))
	}
	args := make([]any, 0, 10+len(bucketTTLs)+len(evArgs))
	args = append(args,
		strconv.FormatInt(nowMs, 10),
		strconv.FormatInt(cfg.StreamMaxLen, 10),
		minID,
		strconv.Itoa(-(cfg.GlobalDedupCap + 1)),
		strconv.FormatInt(b.now.Add(-cfg.DedupWindow).UnixMilli()-1, 10),
		msDur(cfg.DedupWindow),
		ms(b.now.Add(-cfg.UserTTL)),
		strconv.Itoa(-(cfg.SeenCap + 1)),
		msDur(cfg.UserTTL),
		strconv.Itoa(len(bucketTTLs)),
	)
	args = append(args, bucketTTLs...)
	args = append(args, evArgs...)
	// The reverse mappings first, so a reader never meets an entry whose
	// pseudonym is not resolvable yet (on one node; on a cluster the two
	// are sent to their nodes at once). Both check Delete's dead marks
	// (pseudonym.go): the user may have been deleted since their script
	// returned the pseudonym.
	var calls []*redisconn.ScriptCall
	ttl := msDur(s.pseudonymTTL())
	for _, u := range b.users {
		if pn := pseudonyms[u.id]; pn != "" {
			calls = append(calls, &redisconn.ScriptCall{Script: reverseScript, Keys: []string{s.reverseKey(pn)}, Args: []any{u.id, ttl}})
		}
	}
	return append(calls, &redisconn.ScriptCall{Script: globalScript, Keys: keys, Args: args})
}

// appendStreamValues appends e's values as globalScript takes them (id,
// user, item, type, time, quantity, weight); the stream entry gets all but
// the user, which it names by pseudonym (fieldPseudonym).
func appendStreamValues(dst []any, e event.Event) []any {
	return append(dst, e.ID, e.UserID, e.ItemID, strconv.Itoa(int(e.Type)), ms(e.Time),
		strconv.FormatInt(int64(e.Quantity), 10), strconv.FormatFloat(float64(e.Weight), 'g', -1, 32))
}

// popularityKey names the bucket that starts at startMs.
func (s *Store) popularityKey(startMs int64) string {
	return s.cfg.Prefix + ":{g}:pop:" + strconv.FormatInt(floorDiv(startMs, 1000), 10)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// Load reads a user's profile in one round trip. An unknown user has an
// empty profile (with UserID set), not an error.
func (s *Store) Load(ctx context.Context, userID string) (Profile, error) {
	if userID == "" {
		return Profile{}, errors.New("load profile: user id is empty")
	}
	pipe := s.rdb.Pipeline()
	q := s.queueLoad(ctx, pipe, userID)
	if _, err := pipe.Exec(ctx); err != nil {
		return Profile{}, fmt.Errorf("load profile of %q: %w", userID, err)
	}
	return q.profile()
}

// MaxLoadMany bounds the users of one LoadMany call (one pipeline).
const MaxLoadMany = 1024

// LoadMany reads the profiles of several users in one pipelined round trip,
// in the order of ids (BatchRecommend loads its users in blocks this way).
// At most MaxLoadMany ids; none may be empty.
func (s *Store) LoadMany(ctx context.Context, ids []string) ([]Profile, error) {
	if len(ids) > MaxLoadMany {
		return nil, fmt.Errorf("load profiles: %d users, at most %d per call", len(ids), MaxLoadMany)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	qs := make([]loadCmds, len(ids))
	for i, id := range ids {
		if id == "" {
			return nil, fmt.Errorf("load profiles: user id %d is empty", i)
		}
		qs[i] = s.queueLoad(ctx, pipe, id)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("load %d profiles: %w", len(ids), err)
	}
	out := make([]Profile, len(ids))
	for i := range qs {
		p, err := qs[i].profile()
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// loadCmds are the queued reads of one user's profile.
type loadCmds struct {
	userID    string
	hist      *redis.StringSliceCmd
	buy, push *redis.ZSliceCmd
	ord       *redis.ZSliceCmd
	dis, srch *redis.ZSliceCmd
	meta      *redis.SliceCmd
	imp       *redis.MapStringStringCmd
}

func (s *Store) queueLoad(ctx context.Context, pipe redis.Pipeliner, userID string) loadCmds {
	k := s.keysOf(userID)
	return loadCmds{
		userID: userID,
		hist:   pipe.LRange(ctx, k.hist, 0, -1),
		buy:    pipe.ZRevRangeWithScores(ctx, k.buy, 0, -1),
		meta:   pipe.HMGet(ctx, k.meta, metaFirstSeen, metaLastSeen, metaPurchases, metaOptedOut),
		imp:    pipe.HGetAll(ctx, k.imp),
		push:   pipe.ZRevRangeWithScores(ctx, k.push, 0, -1),
		ord:    pipe.ZRevRangeWithScores(ctx, k.ord, 0, -1),
		// Expired dismissals are trimmed on the next write; skip them
		// until then.
		dis: pipe.ZRevRangeByScoreWithScores(ctx, k.dis, &redis.ZRangeBy{
			Min: strconv.FormatInt(s.cfg.Now().Add(-s.cfg.NotInterestedTTL).UnixMilli(), 10), Max: "+inf"}),
		srch: pipe.ZRevRangeWithScores(ctx, k.srch, 0, -1),
	}
}

// profile parses the replies of an executed pipeline.
func (q loadCmds) profile() (Profile, error) {
	userID := q.userID
	hist, buy, meta, imp := q.hist, q.buy, q.meta, q.imp
	p := Profile{UserID: userID}
	if raw := hist.Val(); len(raw) > 0 {
		p.History = make([]Entry, 0, len(raw))
		for i, r := range raw {
			e, err := decodeEntry([]byte(r))
			if err != nil {
				return Profile{}, fmt.Errorf("load profile of %q: history entry %d: %w", userID, i, err)
			}
			p.History = append(p.History, e)
		}
		// The list is in arrival order; a late event belongs further back.
		slices.SortStableFunc(p.History, func(a, b Entry) int { return b.Time.Compare(a.Time) })
	}
	if zs := buy.Val(); len(zs) > 0 {
		p.Purchased = make([]Purchase, len(zs))
		for i, z := range zs {
			p.Purchased[i] = Purchase{ItemID: z.Member.(string), Time: time.UnixMilli(int64(z.Score)).UTC()}
		}
	}
	if zs := q.push.Val(); len(zs) > 0 {
		p.Pushed = make([]Pushed, len(zs))
		for i, z := range zs {
			p.Pushed[i] = Pushed{ItemID: z.Member.(string), Time: time.UnixMilli(int64(z.Score)).UTC()}
		}
	}
	if zs := q.ord.Val(); len(zs) > 0 {
		p.Orders = make([]Order, 0, len(zs))
		for _, z := range zs {
			// The member is "<spend>|<event digest>".
			v, _, ok := strings.Cut(z.Member.(string), "|")
			spend, err := strconv.ParseFloat(v, 64)
			if !ok || err != nil {
				return Profile{}, fmt.Errorf("load profile of %q: malformed order %q", userID, v)
			}
			p.Orders = append(p.Orders, Order{Time: time.UnixMilli(int64(z.Score)).UTC(), Spend: spend})
		}
	}
	for _, z := range q.dis.Val() {
		m := z.Member.(string)
		d := Dismissal{Time: time.UnixMilli(int64(z.Score)).UTC()}
		switch {
		case strings.HasPrefix(m, dismissItem):
			d.ItemID = m[len(dismissItem):]
		case strings.HasPrefix(m, dismissCategory):
			d.Category = m[len(dismissCategory):]
		case strings.HasPrefix(m, dismissLowRated):
			d.ItemID, d.LowRating = m[len(dismissLowRated):], true
		default:
			return Profile{}, fmt.Errorf("load profile of %q: malformed dismissal %q", userID, m)
		}
		p.Dismissed = append(p.Dismissed, d)
	}
	for _, z := range q.srch.Val() {
		attr, value, ok := event.CutSearchMatch(z.Member.(string))
		if !ok {
			return Profile{}, fmt.Errorf("load profile of %q: malformed search affinity %q", userID, z.Member)
		}
		p.Searches = append(p.Searches, SearchAffinity{Attribute: attr, Value: value, Count: z.Score})
	}
	vals := meta.Val()
	for i, dst := range []*time.Time{&p.FirstSeen, &p.LastSeen} {
		if v, ok := vals[i].(string); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Profile{}, fmt.Errorf("load profile of %q: meta field %d: %w", userID, i, err)
			}
			*dst = time.UnixMilli(n).UTC()
		}
	}
	if v, ok := vals[2].(string); ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return Profile{}, fmt.Errorf("load profile of %q: purchase count: %w", userID, err)
		}
		p.PurchaseCount = n
	}
	p.OptedOut = vals[3] == "1"
	if raw := imp.Val(); len(raw) > 0 {
		p.Impressions = make([]Impressions, 0, len(raw))
		for item, v := range raw {
			times, err := decodeImpressions(v)
			if err != nil {
				return Profile{}, fmt.Errorf("load profile of %q: impressions of %q: %w", userID, item, err)
			}
			if len(times) > 0 {
				p.Impressions = append(p.Impressions, Impressions{ItemID: item, Times: times})
			}
		}
		slices.SortFunc(p.Impressions, func(a, b Impressions) int { return cmp.Compare(a.ItemID, b.ItemID) })
	}
	return p, nil
}

// decodeImpressions parses an impression field, "<last click ms>|<t1>,<t2>,...",
// into the impression times, oldest first.
func decodeImpressions(v string) ([]time.Time, error) {
	_, list, ok := strings.Cut(v, "|")
	if !ok {
		return nil, fmt.Errorf("malformed %q", v)
	}
	if list == "" {
		return nil, nil
	}
	parts := strings.Split(list, ",")
	out := make([]time.Time, len(parts))
	for i, t := range parts {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("malformed time %q", t)
		}
		out[i] = time.UnixMilli(n).UTC()
	}
	return out, nil
}

// SetOptOut records whether a user opted out of personalization. Opting out
// deletes the user's history, impressions and activity times and keeps the
// purchases (what purchase exclusion needs) and the dedup set (so a retried
// event is still recognised); from then on the user's events store only
// purchases and are not appended to the global stream (they still count in
// popularity). The flag lives in the user's meta hash (UserTTL, refreshed by
// the user's events) and in the global opt-out set (entries not refreshed by
// an event for UserTTL are dropped), written in one round trip.
func (s *Store) SetOptOut(ctx context.Context, userID string, optedOut bool) error {
	if userID == "" {
		return errors.New("set opt-out: user id is empty")
	}
	flag := "0"
	if optedOut {
		flag = "1"
	}
	keys, args := s.keysOf(userID).all(), []any{flag, msDur(s.cfg.UserTTL)}
	pipe := s.rdb.Pipeline()
	cmd := optOutScript.EvalSha(ctx, pipe, keys, args...)
	var set, unseen redis.Cmder
	if optedOut {
		set = pipe.ZAdd(ctx, s.optOut, redis.Z{Score: float64(s.cfg.Now().UnixMilli()), Member: userID})
		unseen = pipe.ZRem(ctx, s.seen, userID) // no activity times: in no segment
	} else {
		set = pipe.ZRem(ctx, s.optOut, userID)
	}
	_, _ = pipe.Exec(ctx) // errors are read per command
	scriptErr := cmd.Err()
	if redisconn.IsNoScript(scriptErr) {
		// First use of the script on this server: send its source once.
		scriptErr = optOutScript.Eval(ctx, s.rdb, keys, args...).Err()
	}
	var unseenErr error
	if unseen != nil {
		unseenErr = unseen.Err()
	}
	if err := errors.Join(scriptErr, set.Err(), unseenErr); err != nil {
		return fmt.Errorf("set opt-out of %q: %w", userID, err)
	}
	return nil
}
