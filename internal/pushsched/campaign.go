package pushsched

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys-dev/recsys/internal/redisconn"
)

// HeldOut reports whether a user is in a campaign's holdout: a SHA-256 of
// the campaign and the user id, read as a uniform number in [0, 1), below
// share. It depends on nothing else, so every replica, every call of the
// campaign and a report computed later agree.
func HeldOut(campaign, userID string, share float64) bool {
	if share <= 0 {
		return false
	}
	h := sha256.New()
	h.Write([]byte("push-holdout\x00"))
	h.Write([]byte(campaign))
	h.Write([]byte{0})
	h.Write([]byte(userID))
	var sum [sha256.Size]byte
	u := binary.BigEndian.Uint64(h.Sum(sum[:0])[:8]) >> 11
	return float64(u)/(1<<53) < share
}

// Group is a side of a campaign.
type Group string

// The groups of a campaign's users.
const (
	Targeted Group = "targeted" // answered (with items or an empty reason other than the holdout)
	HeldOutG Group = "held_out" // answered PUSH_EMPTY_REASON_HOLDOUT
)

// ErrCampaignMismatch is returned when a call names a campaign that was
// started with another holdout share.
var ErrCampaignMismatch = errors.New("campaign mismatch")

// Defaults of CampaignConfig.
const (
	DefaultCampaignTTL        = 90 * 24 * time.Hour
	DefaultCampaignMaxMembers = 1_000_000
	// campaignIndexCap bounds the index of campaigns (the newest kept).
	campaignIndexCap = 10_000
)

// CampaignConfig tunes the campaign store; zero fields get the defaults.
type CampaignConfig struct {
	Prefix string // the Redis key prefix (the profile store's)
	// TTL of a campaign's keys, refreshed by each of its calls (default
	// 90 days: the report compares visits and purchases after it).
	TTL time.Duration
	// MaxMembers bounds the users stored per group of a campaign (default
	// 1,000,000); answers beyond it are counted, not stored.
	MaxMembers int64
	Now        func() time.Time
}

// Campaigns stores, per push campaign, who was targeted and who was held
// out, for the campaign's report (the experiments report reads it through
// Get and Members).
//
// Keys, each campaign in one hash slot (the campaign id escaped as user
// ids are in hash tags):
//
//	<prefix>:{push:<campaign>}:meta      hash: share, first_ms, last_ms, targeted, held_out, dropped
//	                                     (targeted and held_out count answers, repeats included; dropped:
//	                                     answers of users not stored because a set was full)
//	<prefix>:{push:<campaign>}:targeted  set of user ids answered (not held out), at most MaxMembers
//	<prefix>:{push:<campaign>}:held_out  set of user ids held out, at most MaxMembers
//	<prefix>:{push}:campaigns            sorted set campaign id -> last call (ms), the newest 10,000
//
// All expire TTL after the campaign's last call.
type Campaigns struct {
	rdb redis.UniversalClient
	cfg CampaignConfig
}

// NewCampaigns builds the store.
func NewCampaigns(rdb redis.UniversalClient, cfg CampaignConfig) (*Campaigns, error) {
	if cfg.TTL == 0 {
		cfg.TTL = DefaultCampaignTTL
	}
	if cfg.MaxMembers == 0 {
		cfg.MaxMembers = DefaultCampaignMaxMembers
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TTL < time.Hour || cfg.MaxMembers < 1 {
		return nil, fmt.Errorf("campaign store: TTL must be >= 1h and max members >= 1, got %v and %d", cfg.TTL, cfg.MaxMembers)
	}
	return &Campaigns{rdb: rdb, cfg: cfg}, nil
}

type campaignKeys struct{ meta, targeted, held string }

func (c *Campaigns) keys(campaign string) campaignKeys {
	base := c.cfg.Prefix + ":{push:" + redisconn.EscapeTag(campaign) + "}:"
	return campaignKeys{meta: base + "meta", targeted: base + string(Targeted), held: base + string(HeldOutG)}
}

func (c *Campaigns) indexKey() string { return c.cfg.Prefix + ":{push}:campaigns" }

// MembersKey is the Redis key of a campaign's group (a set of user ids).
func (c *Campaigns) MembersKey(campaign string, g Group) string {
	k := c.keys(campaign)
	if g == HeldOutG {
		return k.held
	}
	return k.targeted
}

// beginScript sets a campaign's share on its first call and returns the
// share it was started with.
//
// KEYS: meta. ARGV: share, now_ms, ttl_ms.
var beginScript = redis.NewScript(`
redis.call('HSETNX', KEYS[1], 'share', ARGV[1])
redis.call('HSETNX', KEYS[1], 'first_ms', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return redis.call('HGET', KEYS[1], 'share')
`)

// Begin records a call of the campaign with its holdout share; a campaign
// started with another share is refused with ErrCampaignMismatch.
func (c *Campaigns) Begin(ctx context.Context, campaign string, share float64) error {
	now := c.cfg.Now()
	want := strconv.FormatFloat(share, 'g', -1, 64)
	got, err := beginScript.Run(ctx, c.rdb, []string{c.keys(campaign).meta}, want, now.UnixMilli(), c.cfg.TTL.Milliseconds()).Text()
	if err != nil {
		return fmt.Errorf("begin campaign %q: %w", campaign, err)
	}
	if got != want {
		return fmt.Errorf("%w: campaign %q was started with holdout_share %s, this call has %s", ErrCampaignMismatch, campaign, got, want)
	}
	idx := c.indexKey()
	_, err = c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, idx, redis.Z{Score: float64(now.UnixMilli()), Member: campaign})
		p.ZRemRangeByRank(ctx, idx, 0, -campaignIndexCap-1)
		p.PExpire(ctx, idx, c.cfg.TTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("index campaign %q: %w", campaign, err)
	}
	return nil
}

// addScript stores answered users in a campaign's sets, up to a cap.
//
// KEYS: meta, targeted, held_out. ARGV: max, ttl_ms, now_ms, number of
// targeted ids, then the targeted ids and the held-out ids.
var addScript = redis.NewScript(`
local max, ttl, nt = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[4])
local dropped = 0
local function add(key, field, from, to)
  if to < from then return end
  local n = redis.call('SCARD', key)
  for i = from, to do
    if n < max then
      n = n + redis.call('SADD', key, ARGV[i])
    elseif redis.call('SISMEMBER', key, ARGV[i]) == 0 then
      dropped = dropped + 1
    end
  end
  redis.call('HINCRBY', KEYS[1], field, to - from + 1)
  redis.call('PEXPIRE', key, ttl)
end
add(KEYS[2], 'targeted', 5, 4 + nt)
add(KEYS[3], 'held_out', 5 + nt, #ARGV)
if dropped > 0 then redis.call('HINCRBY', KEYS[1], 'dropped', dropped) end
redis.call('HSET', KEYS[1], 'last_ms', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
return dropped
`)

// Add stores answered users of a campaign.
func (c *Campaigns) Add(ctx context.Context, campaign string, targeted, heldOut []string) error {
	if len(targeted)+len(heldOut) == 0 {
		return nil
	}
	k := c.keys(campaign)
	args := make([]any, 0, 4+len(targeted)+len(heldOut))
	args = append(args, c.cfg.MaxMembers, c.cfg.TTL.Milliseconds(), c.cfg.Now().UnixMilli(), len(targeted))
	for _, id := range targeted {
		args = append(args, id)
	}
	for _, id := range heldOut {
		args = append(args, id)
	}
	if err := addScript.Run(ctx, c.rdb, []string{k.meta, k.targeted, k.held}, args...).Err(); err != nil {
		return fmt.Errorf("store %d users of campaign %q: %w", len(targeted)+len(heldOut), campaign, err)
	}
	return nil
}

// Campaign is what the store knows of one campaign.
type Campaign struct {
	ID           string
	HoldoutShare float64
	First, Last  time.Time // first and latest call
	// Answers counted per group (repeats included), and answers of users
	// not stored because the group's set was full.
	TargetedAnswers, HeldOutAnswers, Dropped int64
	// Users stored per group (distinct).
	TargetedUsers, HeldOutUsers int64
}

// ErrNoCampaign is returned by Get for a campaign the store does not know
// (never run, or expired).
var ErrNoCampaign = errors.New("no such campaign")

// Get returns a campaign's record.
func (c *Campaigns) Get(ctx context.Context, campaign string) (Campaign, error) {
	k := c.keys(campaign)
	var meta *redis.MapStringStringCmd
	var nt, nh *redis.IntCmd
	if _, err := c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		meta = p.HGetAll(ctx, k.meta)
		nt = p.SCard(ctx, k.targeted)
		nh = p.SCard(ctx, k.held)
		return nil
	}); err != nil {
		return Campaign{}, fmt.Errorf("read campaign %q: %w", campaign, err)
	}
	m := meta.Val()
	if len(m) == 0 {
		return Campaign{}, fmt.Errorf("%w: %q", ErrNoCampaign, campaign)
	}
	num := func(f string) int64 { n, _ := strconv.ParseInt(m[f], 10, 64); return n }
	share, _ := strconv.ParseFloat(m["share"], 64)
	out := Campaign{ID: campaign, HoldoutShare: share, TargetedAnswers: num("targeted"), HeldOutAnswers: num("held_out"),
		Dropped: num("dropped"), TargetedUsers: nt.Val(), HeldOutUsers: nh.Val()}
	if ms := num("first_ms"); ms > 0 {
		out.First = time.UnixMilli(ms).UTC()
	}
	if ms := num("last_ms"); ms > 0 {
		out.Last = time.UnixMilli(ms).UTC()
	}
	return out, nil
}

// List returns the ids of the campaigns run since since, newest first.
func (c *Campaigns) List(ctx context.Context, since time.Time) ([]string, error) {
	ids, err := c.rdb.ZRevRangeByScore(ctx, c.indexKey(), &redis.ZRangeBy{
		Min: strconv.FormatInt(since.UnixMilli(), 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("list campaigns: %w", err)
	}
	return ids, nil
}

// Members calls fn with the stored users of a campaign's group, a page at
// a time (SSCAN: a user may come twice, in no order).
func (c *Campaigns) Members(ctx context.Context, campaign string, g Group, fn func(ids []string) error) error {
	key := c.MembersKey(campaign, g)
	var cursor uint64
	for {
		ids, next, err := c.rdb.SScan(ctx, key, cursor, "", 1000).Result()
		if err != nil {
			return fmt.Errorf("read %s users of campaign %q: %w", g, campaign, err)
		}
		if len(ids) > 0 {
			if err := fn(ids); err != nil {
				return err
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// DeleteUser removes a user from both groups of every campaign in the
// index (at most 10,000 campaigns, two SREM each, in one pipelined round
// trip after reading the index) and returns how many memberships it
// removed. The campaigns' counters (answers targeted and held out) are
// counts, not ids, and stay.
func (c *Campaigns) DeleteUser(ctx context.Context, userID string) (int, error) {
	ids, err := c.rdb.ZRange(ctx, c.indexKey(), 0, -1).Result()
	if err != nil {
		return 0, fmt.Errorf("delete user from campaigns: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	pipe := c.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, 0, 2*len(ids))
	for _, id := range ids {
		k := c.keys(id)
		cmds = append(cmds, pipe.SRem(ctx, k.targeted, userID), pipe.SRem(ctx, k.held, userID))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("delete user from campaigns: %w", err)
	}
	n := 0
	for _, cmd := range cmds {
		n += int(cmd.Val())
	}
	return n, nil
}
