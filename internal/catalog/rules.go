package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/periodic"
)

// The shop's rules are global settings every server applies to every answer:
// the blocklist (items and categories never recommended) and per-category
// settings. They live beside the catalog, in the {catalog} slot:
//
//	<prefix>:{catalog}:blocked:items  SET     blocked item ids; at most MaxBlockedItems
//	<prefix>:{catalog}:blocked:cats   SET     blocked categories; at most MaxBlockedCategories
//	<prefix>:{catalog}:categories     HASH    category -> repeatable_after in ms (decimal);
//	                                          at most MaxCategories
//	<prefix>:{catalog}:rules          STRING  version, INCR'd by every change in the same script
//
// Every change runs as one script that also increments the version, so a
// RulesCache polling that one small key (every 250 ms by default) sees every
// change and then reads all the rules in one MULTI: each server applies a
// change within a poll interval plus a round trip.

// Limits of the rules, enforced by the scripts so concurrent writers cannot
// overshoot them.
const (
	MaxBlockedItems      = 100_000
	MaxBlockedCategories = 10_000
	MaxCategories        = 10_000
	// MaxRepeatableAfter bounds Category.RepeatableAfter (about 10 years).
	MaxRepeatableAfter = 10 * 365 * 24 * time.Hour
)

// ErrRulesFull is returned when a change would exceed a limit of the rules.
var ErrRulesFull = errors.New("shop rules limit reached")

// Category holds the settings of one category.
type Category struct {
	Name string
	// RepeatableAfter lets a bought item of the category be recommended
	// again once this long has passed since the user's latest purchase of
	// it (consumables). 0: never again.
	RepeatableAfter time.Duration
}

// Rules is an immutable snapshot of the shop's rules. The zero value (and a
// nil *Rules) blocks nothing.
type Rules struct {
	Version           int64
	BlockedItems      map[string]struct{}
	BlockedCategories map[string]struct{}
	Categories        map[string]Category
	// Attributes are the declared custom attributes (attrs.go).
	Attributes map[string]AttrType
	// Boosts are the boost and bury rules (boost.go); MaxAdjustment is
	// DefaultMaxAdjustment when none were set.
	Boosts BoostSet
}

// Blocked reports whether an item with this id and category is on the
// blocklist.
func (r *Rules) Blocked(id, category string) bool {
	if r == nil {
		return false
	}
	if _, ok := r.BlockedItems[id]; ok {
		return true
	}
	if category == "" {
		return false
	}
	_, ok := r.BlockedCategories[category]
	return ok
}

// RepeatableAfter is the category's repeat interval, 0 when none.
func (r *Rules) RepeatableAfter(category string) time.Duration {
	if r == nil || category == "" {
		return 0
	}
	return r.Categories[category].RepeatableAfter
}

// BlocklistSummary describes the blocklist after a change.
type BlocklistSummary struct {
	Items, Categories int
	Version           int64
}

func (s *Store) rulesKeys() []string {
	return []string{s.blockedItems, s.blockedCats, s.rulesVersion}
}

// blocklistScript changes the blocklist and bumps the rules version.
//
// KEYS: blocked items, blocked categories, version
// ARGV: op ("set", "add" or "remove"), max items, max categories, number of
// item ids n, then n item ids, then the categories.
// Returns {items, categories, version}, or an error reply "FULL ..." when
// the change would exceed a limit (nothing is written then).
var blocklistScript = redis.NewScript(`
local op = ARGV[1]
local n = tonumber(ARGV[4])
local lists = {{}, {}}
for i = 5, 4 + n do lists[1][#lists[1] + 1] = ARGV[i] end
for i = 5 + n, #ARGV do lists[2][#lists[2] + 1] = ARGV[i] end
local limits = {tonumber(ARGV[2]), tonumber(ARGV[3])}
if op == 'add' then
  for k = 1, 2 do
    local fresh = 0
    local l = lists[k]
    for j = 1, #l, 1000 do
      local r = redis.call('SMISMEMBER', KEYS[k], unpack(l, j, math.min(j + 999, #l)))
      for _, v in ipairs(r) do if v == 0 then fresh = fresh + 1 end end
    end
    if redis.call('SCARD', KEYS[k]) + fresh > limits[k] then
      return redis.error_reply('FULL blocklist would exceed ' .. limits[k] .. ' entries')
    end
  end
end
if op == 'set' then
  for k = 1, 2 do redis.call('DEL', KEYS[k]) end
end
for k = 1, 2 do
  local l = lists[k]
  for j = 1, #l, 1000 do
    if op == 'remove' then
      redis.call('SREM', KEYS[k], unpack(l, j, math.min(j + 999, #l)))
    else
      redis.call('SADD', KEYS[k], unpack(l, j, math.min(j + 999, #l)))
    end
  end
end
local v = redis.call('INCR', KEYS[3])
return {redis.call('SCARD', KEYS[1]), redis.call('SCARD', KEYS[2]), v}
`)

func (s *Store) changeBlocklist(ctx context.Context, op string, items, categories []string) (BlocklistSummary, error) {
	if err := validateRuleNames("item id", items, MaxIDBytes); err != nil {
		return BlocklistSummary{}, err
	}
	if err := validateRuleNames("category", categories, MaxCategoryBytes); err != nil {
		return BlocklistSummary{}, err
	}
	if op == "set" && (len(items) > MaxBlockedItems || len(categories) > MaxBlockedCategories) {
		return BlocklistSummary{}, fmt.Errorf("%w: %d items and %d categories, at most %d and %d",
			ErrRulesFull, len(items), len(categories), MaxBlockedItems, MaxBlockedCategories)
	}
	args := make([]any, 0, 4+len(items)+len(categories))
	args = append(args, op, strconv.Itoa(MaxBlockedItems), strconv.Itoa(MaxBlockedCategories), strconv.Itoa(len(items)))
	for _, id := range items {
		args = append(args, id)
	}
	for _, c := range categories {
		args = append(args, c)
	}
	res, err := blocklistScript.Run(ctx, s.rdb, s.rulesKeys(), args...).Int64Slice()
	if err != nil {
		if redis.HasErrorPrefix(err, "FULL") {
			return BlocklistSummary{}, fmt.Errorf("%s blocklist: %w: %v", op, ErrRulesFull, err)
		}
		return BlocklistSummary{}, fmt.Errorf("%s blocklist: %w", op, err)
	}
	if len(res) != 3 {
		return BlocklistSummary{}, fmt.Errorf("%s blocklist: script returned %d values", op, len(res))
	}
	return BlocklistSummary{Items: int(res[0]), Categories: int(res[1]), Version: res[2]}, nil
}

func validateRuleNames(what string, names []string, maxBytes int) error {
	for i, n := range names {
		switch {
		case n == "":
			return fmt.Errorf("%s %d is empty", what, i)
		case len(n) > maxBytes:
			return fmt.Errorf("%s %d is %d bytes, more than %d", what, i, len(n), maxBytes)
		case !utf8.ValidString(n):
			return fmt.Errorf("%s %d is not valid UTF-8", what, i)
		}
	}
	return nil
}

// SetBlocklist replaces the blocklist.
func (s *Store) SetBlocklist(ctx context.Context, items, categories []string) (BlocklistSummary, error) {
	return s.changeBlocklist(ctx, "set", items, categories)
}

// AddToBlocklist adds items and categories to the blocklist. It fails with
// ErrRulesFull, writing nothing, when a limit would be exceeded.
func (s *Store) AddToBlocklist(ctx context.Context, items, categories []string) (BlocklistSummary, error) {
	return s.changeBlocklist(ctx, "add", items, categories)
}

// RemoveFromBlocklist removes items and categories from the blocklist.
func (s *Store) RemoveFromBlocklist(ctx context.Context, items, categories []string) (BlocklistSummary, error) {
	return s.changeBlocklist(ctx, "remove", items, categories)
}

// categoriesScript upserts category settings and bumps the rules version.
//
// KEYS: categories, version
// ARGV: max categories, then name, repeatable_after_ms pairs.
var categoriesScript = redis.NewScript(`
local fresh = 0
for i = 2, #ARGV, 2 do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 0 then fresh = fresh + 1 end
end
if redis.call('HLEN', KEYS[1]) + fresh > tonumber(ARGV[1]) then
  return redis.error_reply('FULL categories would exceed ' .. ARGV[1] .. ' entries')
end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return redis.call('INCR', KEYS[2])
`)

// UpsertCategories creates or replaces category settings.
func (s *Store) UpsertCategories(ctx context.Context, cats []Category) error {
	if len(cats) == 0 {
		return nil
	}
	args := make([]any, 0, 1+2*len(cats))
	args = append(args, strconv.Itoa(MaxCategories))
	for i, c := range cats {
		if err := validateRuleNames("category", []string{c.Name}, MaxCategoryBytes); err != nil {
			return fmt.Errorf("category %d: %w", i, err)
		}
		if c.RepeatableAfter < 0 || c.RepeatableAfter > MaxRepeatableAfter {
			return fmt.Errorf("category %d (%q): repeatable_after must be within 0..%v, got %v", i, c.Name, MaxRepeatableAfter, c.RepeatableAfter)
		}
		args = append(args, c.Name, strconv.FormatInt(c.RepeatableAfter.Milliseconds(), 10))
	}
	err := categoriesScript.Run(ctx, s.rdb, []string{s.categories, s.rulesVersion}, args...).Err()
	if redis.HasErrorPrefix(err, "FULL") {
		return fmt.Errorf("upsert categories: %w: %v", ErrRulesFull, err)
	}
	if err != nil {
		return fmt.Errorf("upsert categories: %w", err)
	}
	return nil
}

// LoadRules reads all the rules atomically (one MULTI).
func (s *Store) LoadRules(ctx context.Context) (*Rules, error) {
	var ver *redis.StringCmd
	var items, cats *redis.StringSliceCmd
	var settings, attrs *redis.MapStringStringCmd
	var boosts *redis.StringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		ver = p.Get(ctx, s.rulesVersion)
		items = p.SMembers(ctx, s.blockedItems)
		cats = p.SMembers(ctx, s.blockedCats)
		settings = p.HGetAll(ctx, s.categories)
		attrs = p.HGetAll(ctx, s.attributes)
		boosts = p.Get(ctx, s.boosts)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("load shop rules: %w", err)
	}
	r := &Rules{
		Boosts:            BoostSet{MaxAdjustment: DefaultMaxAdjustment},
		BlockedItems:      make(map[string]struct{}, len(items.Val())),
		BlockedCategories: make(map[string]struct{}, len(cats.Val())),
		Categories:        make(map[string]Category, len(settings.Val())),
	}
	if v, err := ver.Int64(); err == nil {
		r.Version = v
	} else if !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("load shop rules: version: %w", err)
	}
	for _, id := range items.Val() {
		r.BlockedItems[id] = struct{}{}
	}
	for _, c := range cats.Val() {
		r.BlockedCategories[c] = struct{}{}
	}
	for name, v := range settings.Val() {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("load shop rules: category %q: bad repeatable_after %q", name, v)
		}
		r.Categories[name] = Category{Name: name, RepeatableAfter: time.Duration(ms) * time.Millisecond}
	}
	if r.Attributes, err = parseDeclarations(attrs.Val()); err != nil {
		return nil, fmt.Errorf("load shop rules: %w", err)
	}
	if r.Boosts, err = parseBoosts(boosts.Val()); err != nil {
		return nil, fmt.Errorf("load shop rules: %w", err)
	}
	return r, nil
}

// rulesVersionOf reads the rules version alone (0 when nothing was ever set).
func (s *Store) rulesVersionOf(ctx context.Context) (int64, error) {
	v, err := s.rdb.Get(ctx, s.rulesVersion).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read shop rules version: %w", err)
	}
	return v, nil
}

// SortedBlocklist returns the blocklist of r, sorted.
func (r *Rules) SortedBlocklist() (items, categories []string) {
	if r == nil {
		return nil, nil
	}
	return slices.Sorted(maps.Keys(r.BlockedItems)), slices.Sorted(maps.Keys(r.BlockedCategories))
}

// SortedCategories returns the category settings of r, sorted by name.
func (r *Rules) SortedCategories() []Category {
	if r == nil {
		return nil
	}
	out := make([]Category, 0, len(r.Categories))
	for _, name := range slices.Sorted(maps.Keys(r.Categories)) {
		out = append(out, r.Categories[name])
	}
	return out
}

// RulesCache keeps the shop's rules in memory. Readers get an immutable
// snapshot without waiting; Sync (or Run) polls the version key and reloads
// everything when it changed.
type RulesCache struct {
	store  *Store
	logger *slog.Logger
	rules  atomic.Pointer[Rules]
	mu     sync.Mutex // serialises Sync
	loaded bool
}

// DefaultRulesPoll is how often Run polls the version by default: a change
// reaches every server within about this long.
const DefaultRulesPoll = 250 * time.Millisecond

// NewRulesCache returns an empty cache of s's rules; logger may be nil.
func NewRulesCache(s *Store, logger *slog.Logger) *RulesCache {
	c := &RulesCache{store: s, logger: orDiscard(logger)}
	c.rules.Store(&Rules{})
	return c
}

// Rules returns the current snapshot (never nil); callers must not modify it.
func (c *RulesCache) Rules() *Rules { return c.rules.Load() }

// Sync reloads the rules if their version changed since the last Sync.
func (c *RulesCache) Sync(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded {
		v, err := c.store.rulesVersionOf(ctx)
		if err != nil {
			return err
		}
		if v == c.rules.Load().Version {
			return nil
		}
	}
	r, err := c.store.LoadRules(ctx)
	if err != nil {
		return err
	}
	c.rules.Store(r)
	c.loaded = true
	return nil
}

// Run calls Sync now and every interval until ctx is done. Errors are logged
// and the last rules are kept; Run returns nil when ctx is done.
func (c *RulesCache) Run(ctx context.Context, every time.Duration) error {
	return periodic.Run(ctx, "shop rules sync", every, c.logger, c.Sync)
}
