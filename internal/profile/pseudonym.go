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
// A Record racing a Delete. Record learns the user's pseudonym from the
// user's script (the user's slot) and writes its reverse mapping and the
// stream entries (the user id in {g}:seen too) in a second round trip, to
// other slots: a Delete that runs between the two would otherwise be
// undone by them. So Delete marks the pseudonym it destroyed as dead where
// those writes land, and they check the mark in the same script: the
// reverse key keeps the value "" (deadMark) instead of being deleted, and
// {g}:deadpn holds the pseudonym; reverseScript does not overwrite the
// mark, and globalScript neither appends nor counts in {g}:seen an event
// under a dead pseudonym. The marks name nobody and live
// deletionRaceWindow, far longer than one Record call.
//
// Entries written before pseudonyms name the user by id. For them Delete
// records a tombstone in {g}:deleted: a keyed hash of the user id (HMAC-
// SHA-256 with a random key kept in {g}:deleted:key) -> deletion time, so
// the set itself holds no id. The tombstones, and the key, expire with the
// stream's retention: by then every old entry has been trimmed.

// maxTombstones bounds the set of deleted users' hashes, and the set of
// dead pseudonyms.
const maxTombstones = 1_000_000

// deletionRaceWindow is how long Delete's dead marks outlive it: longer
// than a Record call takes from its first round trip to its second (a few
// Redis timeouts at most).
const deletionRaceWindow = 10 * time.Minute

// deadMark is the value of a destroyed pseudonym's reverse key.
const deadMark = ""

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

// reverseScript sets a pseudonym's reverse mapping and its TTL, unless
// Delete marked the pseudonym dead (the key holds deadMark): then the
// Record raced the deletion and lost, and the mark stays.
// KEYS: reverse key. ARGV: user id, ttl_ms.
var reverseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == '' then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// forgetScript replaces a pseudonym's reverse mapping by the dead mark.
// KEYS: reverse key. ARGV: mark_ttl_ms.
var forgetScript = redis.NewScript(`
redis.call('SET', KEYS[1], '', 'PX', ARGV[1])
return 1
`)

// deleteGlobalScript removes a user from the global sets in one step:
// the opted-out and seen users, plus the user's pseudonym added to the
// dead ones (so a racing Record's globalScript cannot add the user to the
// seen set again), and a tombstone for entries from before pseudonyms.
// KEYS: deleted, optout, seen, deadpn (all {g}).
// ARGV: user id, tombstone hash, now_ms, tombstone_cutoff_ms (older
// tombstones are dropped), -(max+1), tombstone_ttl_ms, pseudonym ("" for
// none), dead_cutoff_ms, dead_ttl_ms.
var deleteGlobalScript = redis.NewScript(`
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[4])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
if ARGV[7] ~= '' then
  redis.call('ZADD', KEYS[4], ARGV[3], ARGV[7])
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[8])
redis.call('ZREMRANGEBYRANK', KEYS[4], 0, ARGV[5])
if redis.call('EXISTS', KEYS[4]) == 1 then redis.call('PEXPIRE', KEYS[4], ARGV[9]) end
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
// pseudonym among them), then the pseudonym's reverse mapping (replaced by
// the dead mark), the user's entries in the global opt-out and seen sets,
// the pseudonym added to the dead ones and a tombstone for entries from
// before pseudonyms. The user's events already in the stream stay there
// until it is trimmed, but no key links them to the user any more, and
// ReadEvents skips them, so a deleted user's history never reaches another
// model. A Record of the user running at the same time either comes
// after the Delete (the user is back, under a new pseudonym) or leaves
// nothing that names the user (see "A Record racing a Delete" above).
func (s *Store) Delete(ctx context.Context, userID string) (int, error) {
	if userID == "" {
		return 0, errors.New("delete profile: user id is empty")
	}
	ttl := s.tombstoneTTL()
	del := &redisconn.ScriptCall{Script: deleteScript, Keys: s.UserKeys(userID)}
	tkey := &redisconn.ScriptCall{Script: tombstoneKeyScript, Keys: []string{s.tombstoneKeyKey()},
		Args: []any{newPseudonym() + newPseudonym(), ttl.Milliseconds()}}
	redisconn.RunScripts(ctx, s.rdb, del, tkey)
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
	window := deletionRaceWindow.Milliseconds()
	calls := []*redisconn.ScriptCall{{Script: deleteGlobalScript,
		Keys: []string{s.deleted, s.optOut, s.seen, s.deadPseudonyms},
		Args: []any{userID, tombstoneHash([]byte(key), userID), now, now - ttl.Milliseconds(),
			-maxTombstones - 1, ttl.Milliseconds(), pn, now - window, window}}}
	if pn != "" {
		calls = append(calls, &redisconn.ScriptCall{Script: forgetScript, Keys: []string{s.reverseKey(pn)}, Args: []any{window}})
	}
	redisconn.RunScripts(ctx, s.rdb, calls...)
	for _, c := range calls {
		if err := c.Cmd.Err(); err != nil {
			return 0, fmt.Errorf("delete profile of %q: %w", userID, err)
		}
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
// reverse mapping that outlived its user's pn key, say written by a
// Record that raced a Delete for longer than deletionRaceWindow, is not
// trusted).
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
		if g.Err() == nil && g.Val() != deadMark {
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
