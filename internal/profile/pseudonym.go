package profile

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/redisconn"
)

// Deletion and the event stream.
//
// Stream entries name their user by a pseudonym: 16 random bytes, created
// by the user's first streamed event, kept in the user's pn key (so every
// later event of the user gets the same one) and mapped back to the user
// by <prefix>:pn:{<pseudonym>}. Both expire pseudonymTTL after the user's
// last streamed event. Delete destroys both: the user's entries stay in
// the stream until it is trimmed, but nothing links them to anyone any
// more, and readers skip them. A user who comes back after a deletion gets
// a new pseudonym, so the old entries are never linked to them again.
//
// Entries written before pseudonyms name the user by id. For them Delete
// records a tombstone in {g}:deleted: a keyed hash of the user id (HMAC-
// SHA-256 with a random key kept in {g}:deleted:key) -> deletion time, so
// the set itself holds no id. The tombstones, and the key, expire with the
// stream's retention: by then every old entry has been trimmed.

// maxTombstones bounds the set of deleted users' hashes.
const maxTombstones = 1_000_000

// newPseudonym returns a fresh random pseudonym (22 characters).
func newPseudonym() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// pseudonymTTL is how long a pseudonym and its reverse mapping live after
// the user's last streamed event: as long as the profile, and at least as
// long as the stream keeps the event.
func (s *Store) pseudonymTTL() time.Duration { return max(s.cfg.UserTTL, s.cfg.StreamMaxAge) }

// tombstoneTTL is how long the tombstones of pre-pseudonym entries matter:
// the stream's retention (the profile's TTL when the stream has none).
func (s *Store) tombstoneTTL() time.Duration {
	if s.cfg.StreamMaxAge > 0 {
		return s.cfg.StreamMaxAge
	}
	return s.cfg.UserTTL
}

// reverseKey names the key that maps a pseudonym back to its user.
func (s *Store) reverseKey(pseudonym string) string {
	return s.cfg.Prefix + ":pn:{" + redisconn.EscapeTag(pseudonym) + "}"
}

func (s *Store) tombstoneKeyKey() string { return s.deleted + ":key" }

// reverseScript sets a pseudonym's reverse mapping and its TTL.
// KEYS: reverse key. ARGV: user id, ttl_ms.
var reverseScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// deleteScript deletes a user's keys and returns the pseudonym the pn key
// (the last key) held ("" when none) and the number of keys deleted.
// KEYS: every key of the user, pn last.
var deleteScript = redis.NewScript(`
local pn = redis.call('GET', KEYS[#KEYS]) or ''
local n = redis.call('DEL', unpack(KEYS))
return {pn, n}
`)

// tombstoneKeyScript returns the tombstone hash key, creating it (from the
// candidate) when there is none, and extends its life.
// KEYS: key. ARGV: candidate, ttl_ms.
var tombstoneKeyScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'NX')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('GET', KEYS[1])
`)

// tombstoneHash is the member of {g}:deleted for a user.
func tombstoneHash(key []byte, userID string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(userID))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:18])
}

// Delete removes every key of a user and returns how many existed, in two
// round trips whatever the size of the stream: the user's keys (their
// pseudonym among them), their entries in the global opt-out and seen sets,
// then the pseudonym's reverse mapping and a tombstone for entries from
// before pseudonyms. The user's events already in the stream stay there
// until it is trimmed, but no key links them to the user any more, and
// ReadEvents skips them, so a deleted user's history never reaches another
// model.
func (s *Store) Delete(ctx context.Context, userID string) (int, error) {
	if userID == "" {
		return 0, errors.New("delete profile: user id is empty")
	}
	ttl := s.tombstoneTTL()
	del := &redisconn.ScriptCall{Script: deleteScript, Keys: s.UserKeys(userID)}
	tkey := &redisconn.ScriptCall{Script: tombstoneKeyScript, Keys: []string{s.tombstoneKeyKey()},
		Args: []any{newPseudonym() + newPseudonym(), ttl.Milliseconds()}}
	redisconn.RunScripts(ctx, s.rdb, del, tkey)
	pipe := s.rdb.Pipeline()
	pipe.ZRem(ctx, s.optOut, userID)
	pipe.ZRem(ctx, s.seen, userID)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("delete profile of %q: %w", userID, err)
	}
	reply, err := del.Cmd.Slice()
	if err == nil && len(reply) != 2 {
		err = fmt.Errorf("delete script returned %d values", len(reply))
	}
	if err != nil {
		return 0, fmt.Errorf("delete profile of %q: %w", userID, err)
	}
	pn, _ := reply[0].(string)
	n, _ := reply[1].(int64)
	key, err := tkey.Cmd.Text()
	if err != nil {
		return 0, fmt.Errorf("delete profile of %q: tombstone key: %w", userID, err)
	}

	now := s.cfg.Now().UnixMilli()
	pipe = s.rdb.Pipeline()
	if pn != "" {
		pipe.Del(ctx, s.reverseKey(pn))
	}
	pipe.ZAdd(ctx, s.deleted, redis.Z{Score: float64(now), Member: tombstoneHash([]byte(key), userID)})
	pipe.ZRemRangeByScore(ctx, s.deleted, "-inf", "("+strconv.FormatInt(now-ttl.Milliseconds(), 10))
	pipe.ZRemRangeByRank(ctx, s.deleted, 0, -maxTombstones-1)
	pipe.PExpire(ctx, s.deleted, ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("delete profile of %q: %w", userID, err)
	}
	return int(n), nil
}

// tombstoneSet is the deleted users' hashes with their deletion times.
type tombstoneSet struct {
	key []byte
	at  map[string]int64
}

// tombstones reads the deleted users' hashes.
func (s *Store) tombstones(ctx context.Context) (tombstoneSet, error) {
	pipe := s.rdb.Pipeline()
	key := pipe.Get(ctx, s.tombstoneKeyKey())
	zs := pipe.ZRangeWithScores(ctx, s.deleted, 0, -1)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return tombstoneSet{}, fmt.Errorf("read deleted users: %w", err)
	}
	if key.Err() != nil { // no key: no tombstone can be read
		return tombstoneSet{}, nil
	}
	out := tombstoneSet{key: []byte(key.Val()), at: make(map[string]int64, len(zs.Val()))}
	for _, z := range zs.Val() {
		if h, ok := z.Member.(string); ok {
			out.at[h] = int64(z.Score)
		}
	}
	return out, nil
}

// hides reports whether the stream entry streamID, from before pseudonyms,
// of user was recorded at or before the user's deletion.
func (t tombstoneSet) hides(user, streamID string) bool {
	if len(t.at) == 0 {
		return false
	}
	at, ok := t.at[tombstoneHash(t.key, user)]
	if !ok {
		return false
	}
	msPart, _, _ := strings.Cut(streamID, "-")
	ms, err := strconv.ParseInt(msPart, 10, 64)
	return err != nil || ms <= at
}

// resolver maps the pseudonyms of a ReadEvents call to users, asking Redis
// once per pseudonym.
type resolver struct {
	s    *Store
	user map[string]string // pseudonym -> user id, "" when unmapped
}

func newResolver(s *Store) *resolver { return &resolver{s: s, user: map[string]string{}} }

// resolve looks up the pseudonyms not seen before in one round trip, and
// checks in a second that each user's pn key still holds the pseudonym (a
// reverse mapping written by a Record racing a Delete is not trusted).
func (r *resolver) resolve(ctx context.Context, pns []string) error {
	var todo []string
	for _, pn := range pns {
		if _, ok := r.user[pn]; pn != "" && !ok {
			r.user[pn] = ""
			todo = append(todo, pn)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	pipe := r.s.rdb.Pipeline()
	gets := make([]*redis.StringCmd, len(todo))
	for i, pn := range todo {
		gets[i] = pipe.Get(ctx, r.s.reverseKey(pn))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("resolve pseudonyms: %w", err)
	}
	pipe = r.s.rdb.Pipeline()
	back := make([]*redis.StringCmd, len(todo))
	for i, g := range gets {
		if g.Err() == nil {
			back[i] = pipe.Get(ctx, r.s.keysOf(g.Val()).pn)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("resolve pseudonyms: %w", err)
	}
	for i, pn := range todo {
		if back[i] != nil && back[i].Err() == nil && back[i].Val() == pn {
			r.user[pn] = gets[i].Val()
		}
	}
	return nil
}
