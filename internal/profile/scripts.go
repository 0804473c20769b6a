package profile

import (
	"context"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// userScript applies one user's share of a batch. All its keys carry the
// user's hash tag, so it runs on one cluster slot.
//
// KEYS: hist, buy, meta, eids
// ARGV: now_ms, hist_stop (cap-1), buy_trim (-(cap+1)), ttl_ms,
//
//	dedup_trim (-(cap+1)), dedup_cutoff_ms (ids remembered at or before it
//	are forgotten), dedup_ttl_ms, then 5 per event, oldest first: dedup
//	member, time_ms, "1" for a purchase else "0", item id, encoded history
//	entry.
//
// Returns one integer per event: 1 if it was new and applied, 0 if its id
// was already remembered.
var userScript = redis.NewScript(`
local hist, buy, meta, eids = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = ARGV[1]
local out, pushed = {}, {}
local purchases = 0
local first, firstN, last, lastN
for i = 8, #ARGV, 5 do
  if redis.call('ZADD', eids, 'NX', now, ARGV[i]) == 1 then
    local ts = ARGV[i + 1]
    local tsN = tonumber(ts)
    pushed[#pushed + 1] = ARGV[i + 4]
    if ARGV[i + 2] == '1' then
      -- GT keeps the latest purchase time when events arrive out of order.
      redis.call('ZADD', buy, 'GT', ts, ARGV[i + 3])
      purchases = purchases + 1
    end
    if firstN == nil or tsN < firstN then first, firstN = ts, tsN end
    if lastN == nil or tsN > lastN then last, lastN = ts, tsN end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
if #pushed > 0 then
  -- In chunks: Lua's unpack has a stack limit of a few thousand values.
  for j = 1, #pushed, 1000 do
    redis.call('LPUSH', hist, unpack(pushed, j, math.min(j + 999, #pushed)))
  end
  redis.call('LTRIM', hist, 0, ARGV[2])
  if purchases > 0 then
    redis.call('ZREMRANGEBYRANK', buy, 0, ARGV[3])
    redis.call('HINCRBY', meta, 'p', purchases)
  end
  local cur = redis.call('HMGET', meta, 'f', 'l')
  if not cur[1] or firstN < tonumber(cur[1]) then redis.call('HSET', meta, 'f', first) end
  if not cur[2] or lastN > tonumber(cur[2]) then redis.call('HSET', meta, 'l', last) end
end
redis.call('ZREMRANGEBYSCORE', eids, '-inf', ARGV[6])
redis.call('ZREMRANGEBYRANK', eids, 0, ARGV[5])
for k = 1, 3 do redis.call('PEXPIRE', KEYS[k], ARGV[4]) end
-- Every id in the dedup set is outside the window once it has not been
-- written for that long, so it can go sooner than the profile.
redis.call('PEXPIRE', eids, ARGV[7])
return out
`)

// globalScript appends a batch to the event stream and counts popularity.
// All its keys carry the {g} hash tag.
//
// KEYS: stream, global dedup set, then the popularity bucket keys the batch
// touches.
// ARGV: now_ms, stream_maxlen, stream_minid ("" = no age trim),
//
//	dedup_trim (-(cap+1)), dedup_cutoff_ms, dedup_ttl_ms, nb (number of
//	bucket keys), nb bucket TTLs in ms, then 10 per event: dedup member,
//	bucket index (1..nb, 0 = not counted), popularity increment, and the
//	stream fields id, user, item, type, time_ms, quantity, weight.
//
// Returns the number of events that were new.
//
// Stream ids come from the caller's clock (now_ms-*) so the stream and
// ReadEvents agree with the Store's clock; if another writer's clock is
// ahead, the id continues from the stream's last entry instead, and if even
// that is refused (entries deleted past it) Redis picks the id ('*').
var globalScript = redis.NewScript(`
local stream, dd = KEYS[1], KEYS[2]
local now = ARGV[1]
local nb = tonumber(ARGV[7])
local added = 0
local id
for i = 8 + nb, #ARGV, 10 do
  if redis.call('ZADD', dd, 'NX', now, ARGV[i]) == 1 then
    local b = tonumber(ARGV[i + 1])
    if b > 0 then redis.call('ZINCRBY', KEYS[2 + b], ARGV[i + 2], ARGV[i + 5]) end
    if id == nil then
      id = now .. '-*'
      local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
      if #top > 0 then
        local ms = string.match(top[1][1], '^(%d+)')
        if tonumber(ms) > tonumber(now) then id = ms .. '-*' end
      end
    end
    local r = redis.pcall('XADD', stream, 'MAXLEN', '~', ARGV[2], id,
      'i', ARGV[i + 3], 'u', ARGV[i + 4], 'p', ARGV[i + 5], 't', ARGV[i + 6],
      's', ARGV[i + 7], 'q', ARGV[i + 8], 'w', ARGV[i + 9])
    if type(r) == 'table' and r.err then
      id = '*'
      redis.call('XADD', stream, 'MAXLEN', '~', ARGV[2], id,
        'i', ARGV[i + 3], 'u', ARGV[i + 4], 'p', ARGV[i + 5], 't', ARGV[i + 6],
        's', ARGV[i + 7], 'q', ARGV[i + 8], 'w', ARGV[i + 9])
    end
    added = added + 1
  end
end
if added > 0 and ARGV[3] ~= '' then
  redis.call('XTRIM', stream, 'MINID', '~', ARGV[3])
end
for b = 1, nb do redis.call('PEXPIRE', KEYS[2 + b], ARGV[7 + b]) end
redis.call('ZREMRANGEBYSCORE', dd, '-inf', ARGV[5])
redis.call('ZREMRANGEBYRANK', dd, 0, ARGV[4])
redis.call('PEXPIRE', dd, ARGV[6])
return added
`)

// popularScript returns the top of the decayed sum of the popularity
// buckets, so only n items cross the network.
//
// Relative to the start of the current bucket the past buckets' weights do
// not change while that bucket is current, so their weighted union is
// computed once per bucket width and kept in the "past" key; each call then
// only unions that with the current bucket and scales both by the decay
// since the current bucket began (which does not change the ranking).
//
// KEYS: past, current bucket, scratch, then the past bucket keys (newest
// first). All in the {g} slot.
// ARGV: past_ttl_ms, current_factor, last rank to return (n-1), then one
// weight per past bucket.
// Returns member, score, member, score, ... best first.
var popularScript = redis.NewScript(`
local past, cur, tmp = KEYS[1], KEYS[2], KEYS[3]
local np = #KEYS - 3
if np > 0 and redis.call('EXISTS', past) == 0 then
  local args = {'ZUNIONSTORE', past, np}
  for i = 1, np do args[#args + 1] = KEYS[3 + i] end
  args[#args + 1] = 'WEIGHTS'
  for i = 1, np do args[#args + 1] = ARGV[3 + i] end
  if redis.call(unpack(args)) > 0 then redis.call('PEXPIRE', past, ARGV[1]) end
end
redis.call('ZUNIONSTORE', tmp, 2, past, cur, 'WEIGHTS', ARGV[2], ARGV[2])
local r = redis.call('ZREVRANGE', tmp, 0, ARGV[3], 'WITHSCORES')
redis.call('DEL', tmp)
return r
`)

// scriptCall is one script invocation of a pipelined batch.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
	cmd    *redis.Cmd
}

// runScripts runs the calls in one pipeline with EVALSHA. Calls the server
// does not know the script of (first use, SCRIPT FLUSH, a failover to a
// fresh node) are sent again in a second round trip with the full source
// (EVAL), which also caches it. Each call's outcome is in its cmd.
func runScripts(ctx context.Context, rdb redis.UniversalClient, calls []*scriptCall) {
	pipe := rdb.Pipeline()
	for _, c := range calls {
		c.cmd = c.script.EvalSha(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // every call's error is read from its cmd
	var retry []*scriptCall
	for _, c := range calls {
		if isNoScript(c.cmd.Err()) {
			retry = append(retry, c)
		}
	}
	if len(retry) == 0 {
		return
	}
	pipe = rdb.Pipeline()
	for _, c := range retry {
		c.cmd = c.script.Eval(ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx)
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || strings.HasPrefix(err.Error(), "NOSCRIPT"))
}
