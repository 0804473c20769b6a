// Package catalog stores the shop's items (category, price, availability,
// creation time, sale window, member-only flag) in Redis and keeps an
// in-memory copy of the whole catalog in every server, synchronised through a
// changelog stream. It also keeps the shop's global rules (blocklist and
// per-category settings, rules.go), which every server polls.
//
// Keys (all with the hash tag {catalog}, so an upsert is one atomic script
// on Redis Cluster too):
//
//	<prefix>:{catalog}:items  HASH    item id -> encoded item
//	<prefix>:{catalog}:log    STREAM  one entry per upserted item: id, n (sequence number);
//	                                  MAXLEN ~ 100000
//	<prefix>:{catalog}:seq    STRING  last sequence number given out
//
// The sequence number lets a Cache tell "nothing happened" from "the log was
// trimmed past where I stopped": entries it reads must continue its last
// number without a gap, or it reloads the whole hash.
package catalog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/event"
	"github.com/recsys-dev/recsys/internal/redisconn"
)

// Limits Upsert enforces.
const (
	MaxIDBytes        = event.MaxIDBytes // the one id rule, event.CheckID
	MaxCategoryBytes  = 256
	MaxTitleBytes     = 1024
	MaxNameBytes      = 256 // brand, seller, a string attribute's value
	MaxItemAttributes = 32
)

// DefaultLogMaxLen is the approximate number of changelog entries kept. A
// cache that falls further behind than this reloads the whole catalog.
const DefaultLogMaxLen = 100_000

// upsertChunk is how many items one script call writes, so a huge upsert
// does not block Redis for long; all chunks still go in one round trip.
const upsertChunk = 1000

// Item is one sellable item.
type Item struct {
	ID        string
	Category  string
	Price     float64
	Available bool
	CreatedAt time.Time // zero when the shop did not say; millisecond precision
	// ValidFrom and ValidUntil bound the item's sale window [ValidFrom,
	// ValidUntil); a zero bound is open. Millisecond precision.
	ValidFrom, ValidUntil time.Time
	// MemberOnly items are recommended only to members.
	MemberOnly bool

	// What the shop knows of the item beyond what filters need (attrs.go):
	// ranking rules match these, diversity caps brands and sellers.
	Title, Brand, Seller string
	RatingAverage        float64 // 0..5, meaningful when RatingCount > 0
	RatingCount          int64
	Promotion            bool
	// Attributes are the item's custom attributes, of declared names and
	// types, at most MaxItemAttributes, names unique.
	Attributes []Attribute
	// Regions, when not empty, are the only regions the item is
	// recommended in (ValidRegion names, unique, at most MaxItemRegions).
	Regions []string
}

// InWindow reports whether t is inside the item's sale window: at or after
// ValidFrom and before ValidUntil.
func (it Item) InWindow(t time.Time) bool {
	return (it.ValidFrom.IsZero() || !t.Before(it.ValidFrom)) && (it.ValidUntil.IsZero() || t.Before(it.ValidUntil))
}

// HasWindow reports whether the item has a sale window at all.
func (it Item) HasWindow() bool { return !it.ValidFrom.IsZero() || !it.ValidUntil.IsZero() }

// Store reads and writes the catalog in Redis. It is safe for concurrent use.
type Store struct {
	rdb             redis.UniversalClient
	items, log, seq string
	logMaxLen       int64

	// The shop's rules (rules.go, attrs.go, boost.go).
	blockedItems, blockedCats, categories, rulesVersion string
	attributes, boosts                                  string
}

// NewStore returns a catalog store whose keys start with prefix ("recsys"
// when empty).
func NewStore(rdb redis.UniversalClient, prefix string) *Store {
	if prefix == "" {
		prefix = "recsys"
	}
	base := prefix + ":{catalog}:"
	return &Store{
		rdb: rdb, items: base + "items", log: base + "log", seq: base + "seq", logMaxLen: DefaultLogMaxLen,
		blockedItems: base + "blocked:items", blockedCats: base + "blocked:cats",
		categories: base + "categories", rulesVersion: base + "rules",
		attributes: base + "attributes", boosts: base + "boosts",
	}
}

// upsertScript writes items and logs each with the next sequence number.
//
// KEYS: items, log, seq
// ARGV: log maxlen, then id, encoded item pairs.
var upsertScript = redis.NewScript(`
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  local n = redis.call('INCR', KEYS[3])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'id', ARGV[i], 'n', n)
end
return (#ARGV - 1) / 2
`)

// Upsert creates or replaces items, in one pipelined round trip, and
// appends their ids to the changelog so every Cache picks them up. Invalid
// input fails the whole call before anything is written.
func (s *Store) Upsert(ctx context.Context, items []Item) error {
	if len(items) == 0 {
		return nil
	}
	for i, it := range items {
		if err := validate(it); err != nil {
			return fmt.Errorf("item %d (id %q): %w", i, it.ID, err)
		}
	}
	if slices.ContainsFunc(items, func(it Item) bool { return len(it.Attributes) > 0 }) {
		decl, err := s.declarations(ctx)
		if err != nil {
			return err
		}
		if err := checkDeclared(items, decl); err != nil {
			return err
		}
	}
	keys := []string{s.items, s.log, s.seq}
	maxLen := strconv.FormatInt(s.logMaxLen, 10)
	var calls []*redisconn.ScriptCall
	for start := 0; start < len(items); start += upsertChunk {
		chunk := items[start:min(start+upsertChunk, len(items))]
		args := make([]any, 0, 1+2*len(chunk))
		args = append(args, maxLen)
		for _, it := range chunk {
			args = append(args, it.ID, string(appendItem(nil, it)))
		}
		calls = append(calls, &redisconn.ScriptCall{Script: upsertScript, Keys: keys, Args: args})
	}
	// One round trip; scripts unknown to the server (first use, flush,
	// failover) go again with their source, which is harmless: they were
	// not run.
	redisconn.RunScripts(ctx, s.rdb, calls...)
	var errs []error
	for i, c := range calls {
		if err := c.Cmd.Err(); err != nil {
			errs = append(errs, fmt.Errorf("upsert items %d..%d: %w", i*upsertChunk, min((i+1)*upsertChunk, len(items))-1, err))
		}
	}
	return errors.Join(errs...)
}

func validate(it Item) error {
	switch {
	case event.CheckID(it.ID) != nil:
		return fmt.Errorf("item id %w", event.CheckID(it.ID))
	case len(it.Category) > MaxCategoryBytes:
		return fmt.Errorf("category is %d bytes, more than %d", len(it.Category), MaxCategoryBytes)
	case !utf8.ValidString(it.Category):
		return errors.New("category is not valid UTF-8")
	case math.IsNaN(it.Price) || math.IsInf(it.Price, 0) || it.Price < 0:
		return fmt.Errorf("price must be a finite number >= 0, got %v", it.Price)
	case !it.ValidFrom.IsZero() && !it.ValidUntil.IsZero() && !it.ValidUntil.After(it.ValidFrom):
		return fmt.Errorf("sale window ends (%v) before or when it starts (%v)", it.ValidUntil, it.ValidFrom)
	}
	return validateAttrs(it)
}

// Get returns the items with the given ids that exist, in request order.
func (s *Store) Get(ctx context.Context, ids []string) ([]Item, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	vals, err := s.rdb.HMGet(ctx, s.items, ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("get %d items: %w", len(ids), err)
	}
	out := make([]Item, 0, len(ids))
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		it, err := decodeItem(ids[i], []byte(str))
		if err != nil {
			return nil, fmt.Errorf("get item %q: %w", ids[i], err)
		}
		out = append(out, it)
	}
	return out, nil
}

// An item is stored as:
//
//	byte 0    bit 0: available; bit 1: a price follows; bit 2: a creation
//	          time follows; bit 3: a sale-window start follows; bit 4: a
//	          sale-window end follows; bit 5: member only; bits 6-7: format
//	          version, 0
//	8 bytes   price, float64 little-endian (only with bit 1; omitted when 0)
//	varint    creation time, Unix ms, zigzag (only with bit 2; omitted when zero)
//	varint    valid from, Unix ms, zigzag (only with bit 3)
//	varint    valid until, Unix ms, zigzag (only with bit 4)
//	rest      format 0: the category, raw bytes; format 1: the category as a
//	          uvarint length and bytes, then the descriptive fields
//	          (appendDescription, attrs.go)
//
// The id is the hash field, so it is not repeated. Bits 3-5 were reserved
// before sale windows and member-only items existed, so items without them
// encode exactly as before; an older server refuses items that use them.
// Format 1 is written only for items with descriptive fields (title, brand,
// seller, rating, promotion, custom attributes), so a catalog without them
// stays readable by older servers.
const (
	itemAvailable  = 0x01
	itemHasPrice   = 0x02
	itemHasCreated = 0x04
	itemHasFrom    = 0x08
	itemHasUntil   = 0x10
	itemMemberOnly = 0x20
	itemReserved   = 0xc0
	itemFormat1    = 0x40
)

func appendItem(b []byte, it Item) []byte {
	var head byte
	if it.Available {
		head |= itemAvailable
	}
	if it.Price != 0 {
		head |= itemHasPrice
	}
	if !it.CreatedAt.IsZero() {
		head |= itemHasCreated
	}
	if !it.ValidFrom.IsZero() {
		head |= itemHasFrom
	}
	if !it.ValidUntil.IsZero() {
		head |= itemHasUntil
	}
	if it.MemberOnly {
		head |= itemMemberOnly
	}
	described := it.described()
	if described {
		head |= itemFormat1
	}
	b = append(b, head)
	if it.Price != 0 {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(it.Price))
	}
	for _, t := range []time.Time{it.CreatedAt, it.ValidFrom, it.ValidUntil} {
		if !t.IsZero() {
			b = binary.AppendVarint(b, t.UnixMilli())
		}
	}
	if !described {
		return append(b, it.Category...)
	}
	b = appendString(b, it.Category)
	return appendDescription(b, it)
}

var errCorrupt = errors.New("corrupt catalog item")

func decodeItem(id string, b []byte) (Item, error) {
	if len(b) == 0 {
		return Item{}, fmt.Errorf("%w: empty", errCorrupt)
	}
	head := b[0]
	format1 := head&itemReserved == itemFormat1
	if format1 {
		head &^= itemFormat1
	}
	if head&itemReserved != 0 {
		return Item{}, fmt.Errorf("%w: unknown format version in header %#x", errCorrupt, head)
	}
	it := Item{ID: id, Available: head&itemAvailable != 0, MemberOnly: head&itemMemberOnly != 0}
	b = b[1:]
	if head&itemHasPrice != 0 {
		if len(b) < 8 {
			return Item{}, fmt.Errorf("%w: truncated price", errCorrupt)
		}
		it.Price = math.Float64frombits(binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	for _, f := range []struct {
		bit  byte
		dst  *time.Time
		name string
	}{{itemHasCreated, &it.CreatedAt, "creation time"}, {itemHasFrom, &it.ValidFrom, "valid from"}, {itemHasUntil, &it.ValidUntil, "valid until"}} {
		if head&f.bit == 0 {
			continue
		}
		ms, n := binary.Varint(b)
		if n <= 0 {
			return Item{}, fmt.Errorf("%w: bad %s", errCorrupt, f.name)
		}
		*f.dst = time.UnixMilli(ms).UTC()
		b = b[n:]
	}
	if !format1 {
		it.Category = string(b)
		return it, nil
	}
	d := decoder{b: b}
	it.Category = d.string()
	d.description(&it)
	if d.err != nil {
		return Item{}, fmt.Errorf("%w: %v", errCorrupt, d.err)
	}
	return it, nil
}
