package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/periodic"
)

// Cache is an in-memory, concurrency-safe copy of the whole catalog. Sync
// brings it up to date from Redis; Lookup never waits for a Sync: readers
// load an immutable snapshot through an atomic pointer, and Sync publishes a
// new one.
//
// A snapshot is a large base map plus a small map of changes since the
// base was built, so applying a few changes copies only the small map;
// when the changes outgrow a quarter of the base they are folded into a new
// base (amortised O(1) per change).
type Cache struct {
	store  *Store
	logger *slog.Logger
	snap   atomic.Pointer[snapshot]

	mu        sync.Mutex // serialises Sync; guards the fields below
	loaded    bool
	lastID    string // last changelog entry applied
	lastSeq   int64  // its sequence number
	fullLoads int    // for tests: how often the whole hash was read
}

type snapshot struct {
	base    map[string]Item
	delta   map[string]change
	n       int
	known   bool
	version uint64
}

type change struct {
	item  Item
	found bool // false: the item was removed
}

func (s *snapshot) lookup(id string) (Item, bool) {
	if c, ok := s.delta[id]; ok {
		return c.item, c.found
	}
	it, ok := s.base[id]
	return it, ok
}

// NewCache returns an empty cache of s; call Sync (or Run) to fill it.
// logger may be nil.
func NewCache(s *Store, logger *slog.Logger) *Cache {
	c := &Cache{store: s, logger: orDiscard(logger)}
	c.snap.Store(&snapshot{})
	return c
}

// orDiscard is logger, or a logger that discards when it is nil.
func orDiscard(logger *slog.Logger) *slog.Logger {
	if logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return logger
}

// Lookup returns the item with the given id.
func (c *Cache) Lookup(id string) (Item, bool) { return c.snap.Load().lookup(id) }

// Range calls fn with every item of the current snapshot, in no particular
// order, until fn returns false. It never waits for a Sync.
func (c *Cache) Range(fn func(Item) bool) {
	s := c.snap.Load()
	for _, ch := range s.delta {
		if ch.found && !fn(ch.item) {
			return
		}
	}
	for id, it := range s.base {
		if _, changed := s.delta[id]; changed {
			continue
		}
		if !fn(it) {
			return
		}
	}
}

// Len is the number of items.
func (c *Cache) Len() int { return c.snap.Load().n }

// Known reports whether the shop ever sent a catalog. Until it has, the
// recommender treats every model item as available.
func (c *Cache) Known() bool { return c.snap.Load().known }

// Version changes whenever Sync changes the contents, so users can rebuild
// state derived from the catalog lazily.
func (c *Cache) Version() uint64 { return c.snap.Load().version }

// syncPage is how many changelog entries or hash fields one round trip reads.
const syncPage = 1000

// Sync brings the cache up to date: the first call reads the whole catalog,
// later calls apply the changelog entries since the last one seen, and if
// the changelog no longer reaches back that far (trimmed, or reset) the
// whole catalog is read again.
func (c *Cache) Sync(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loaded {
		return c.fullLoad(ctx)
	}
	for {
		msgs, err := c.store.rdb.XRangeN(ctx, c.store.log, "("+c.lastID, "+", syncPage).Result()
		if err != nil {
			return fmt.Errorf("read catalog changelog: %w", err)
		}
		if len(msgs) == 0 {
			return nil
		}
		ids := make([]string, 0, len(msgs))
		seq := c.lastSeq
		for _, m := range msgs {
			n, id, err := parseLogEntry(m)
			if err != nil {
				return err
			}
			if n != seq+1 {
				c.logger.InfoContext(ctx, "catalog changelog has a gap; reloading the whole catalog",
					"after_seq", seq, "next_seq", n)
				return c.fullLoad(ctx)
			}
			seq = n
			ids = append(ids, id)
		}
		if err := c.apply(ctx, ids); err != nil {
			return err
		}
		c.lastID, c.lastSeq = msgs[len(msgs)-1].ID, seq
		if len(msgs) < syncPage {
			return nil
		}
	}
}

func parseLogEntry(m redis.XMessage) (int64, string, error) {
	id, _ := m.Values["id"].(string)
	ns, _ := m.Values["n"].(string)
	n, err := strconv.ParseInt(ns, 10, 64)
	if id == "" || err != nil {
		return 0, "", fmt.Errorf("catalog changelog entry %s: malformed %v", m.ID, m.Values)
	}
	return n, id, nil
}

// apply reads the current state of the changed ids and publishes it.
func (c *Cache) apply(ctx context.Context, ids []string) error {
	vals, err := c.store.rdb.HMGet(ctx, c.store.items, ids...).Result()
	if err != nil {
		return fmt.Errorf("read %d changed catalog items: %w", len(ids), err)
	}
	old := c.snap.Load()
	next := &snapshot{base: old.base, n: old.n, known: true, version: old.version + 1}
	next.delta = make(map[string]change, len(old.delta)+len(ids))
	for k, v := range old.delta {
		next.delta[k] = v
	}
	for i, id := range ids {
		_, had := next.lookup(id)
		ch := change{}
		if s, ok := vals[i].(string); ok {
			it, err := decodeItem(id, []byte(s))
			if err != nil {
				return fmt.Errorf("catalog item %q: %w", id, err)
			}
			ch = change{item: it, found: true}
		}
		switch {
		case ch.found && !had:
			next.n++
		case !ch.found && had:
			next.n--
		}
		next.delta[id] = ch
	}
	if len(next.delta) > max(1024, len(next.base)/4) {
		base := make(map[string]Item, next.n)
		for k, v := range next.base {
			base[k] = v
		}
		for k, ch := range next.delta {
			if ch.found {
				base[k] = ch.item
			} else {
				delete(base, k)
			}
		}
		next.base, next.delta = base, nil
	}
	c.snap.Store(next)
	return nil
}

// fullLoad reads the whole catalog. The changelog position is read first
// (atomically with the sequence counter), so a change racing with the scan
// is at worst applied twice, never missed.
func (c *Cache) fullLoad(ctx context.Context) error {
	s := c.store
	var seqCmd *redis.StringCmd
	var topCmd *redis.XMessageSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		seqCmd = p.Get(ctx, s.seq)
		topCmd = p.XRevRangeN(ctx, s.log, "+", "-", 1)
		return nil
	})
	if err == nil || errors.Is(err, redis.Nil) { // a missing counter is not an error
		err = topCmd.Err()
		if seqErr := seqCmd.Err(); err == nil && !errors.Is(seqErr, redis.Nil) {
			err = seqErr
		}
	}
	if err != nil {
		return fmt.Errorf("read catalog changelog position: %w", err)
	}
	lastID, lastSeq := "0-0", int64(0)
	if top := topCmd.Val(); len(top) > 0 {
		n, _, err := parseLogEntry(top[0])
		if err != nil {
			return err
		}
		lastID, lastSeq = top[0].ID, n
	} else if v, err := seqCmd.Int64(); err == nil {
		lastSeq = v
	}

	items := make(map[string]Item)
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, s.items, cursor, "", syncPage).Result()
		if err != nil {
			return fmt.Errorf("scan catalog: %w", err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			it, err := decodeItem(kv[i], []byte(kv[i+1]))
			if err != nil {
				return fmt.Errorf("catalog item %q: %w", kv[i], err)
			}
			items[kv[i]] = it
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	old := c.snap.Load()
	c.snap.Store(&snapshot{base: items, n: len(items), known: lastSeq > 0 || len(items) > 0, version: old.version + 1})
	c.loaded, c.lastID, c.lastSeq = true, lastID, lastSeq
	c.fullLoads++
	c.logger.DebugContext(ctx, "catalog loaded", "items", len(items), "seq", lastSeq)
	return nil
}

// Run calls Sync now and then every interval until ctx is done. Errors are
// logged and retried at the next tick; Run returns nil when ctx is done, so
// it fits an errgroup.
func (c *Cache) Run(ctx context.Context, every time.Duration) error {
	return periodic.Run(ctx, "catalog sync", every, c.logger, c.Sync)
}
