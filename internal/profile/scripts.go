package profile

import "github.com/redis/go-redis/v9"

// userScript applies one user's share of a batch. All its keys carry the
// user's hash tag, so it runs on one cluster slot.
//
// KEYS: hist, buy, meta, eids, imp, push, ord, dis, srch, pn
// ARGV: now_ms, hist_stop (cap-1), buy_trim (-(cap+1)), ttl_ms,
//
//	dedup_trim (-(cap+1)), dedup_cutoff_ms (ids remembered at or before it
//	are forgotten), dedup_ttl_ms, imp_keep (impression times kept per
//	item), imp_cap (items kept), imp_ttl_ms, push_trim (-(cap+1)),
//	push_cutoff_ms, push_ttl_ms, ord_trim (-(cap+1)), ord_cutoff_ms,
//	dis_trim (-(cap+1)), dis_cutoff_ms, dis_ttl_ms, srch_trim (-(cap+1)),
//	pseudonym candidate ("" when the batch has no streamed event),
//	pseudonym_ttl_ms, then 6 per event, oldest first: dedup member, time_ms, kind ("0" a
//	click other than a purchase, "1" a purchase, "2" an impression, "3" a
//	push, "4" a dismissal, "5" a rating above the low mark, "6" a low
//	rating, "7" a search), item id, encoded history entry, value (the
//	spend of a purchase; the dismissal member of a dismissal or rating;
//	the newline-separated match keys of a search).
//
// The dis zset maps a dismissal ("i:<item>", "c:<category>", "r:<item>"
// for a low rating) to its time; a rating above the low mark removes the
// item's "r:" member. The srch zset counts the searches that matched each
// key. Dismissals skip the dedup set (dismissing again only moves the
// time); opted-out users' dismissals are kept (they are the user's
// instruction, not tracking), their ratings and searches are not.
//
// Returns one integer per event, then the user's stream pseudonym ("" when
// none is needed: no streamed event, or the user opted out). The pn key
// keeps the pseudonym; when it has none (a new or deleted user) the
// candidate becomes it. Each integer is 1 if the event was new and applied, 0 if its id
// was already remembered (for an impression: if the item's list already
// holds its time; for a push: if the item's latest push is at or after its
// time; impressions and pushes do not use the dedup set, which they would
// fill at several times the rate of all other events).
//
// The push zset maps an item to the latest time it was pushed; the ord
// zset holds one member "<spend>|<dedup member>" per purchase, scored by
// its time. A batch of pushes only does not refresh the profile's TTL: a
// user who is only sent messages is not active.
//
// A user whose meta hash has o=1 opted out of personalization: of their
// events only purchases are stored (buy set, dedup), nothing else.
//
// The imp hash maps an item to "<last click ms>|<t1>,<t2>,..." : the times
// of its impressions after the user's last click on it (view, cart,
// purchase or custom event), ascending, at most imp_keep. An impression at
// or before the last click is not counted; a click drops the impressions
// up to it, and the field when none is left.
var userScript = redis.NewScript(`
local hist, buy, meta, eids, imp, push, ord = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local dis, srch, pnKey = KEYS[8], KEYS[9], KEYS[10]
local disTouched, srchTouched = false, false
local now = ARGV[1]
local keep, impCap = tonumber(ARGV[8]), tonumber(ARGV[9])
local optedOut = redis.call('HGET', meta, 'o') == '1'
local out, pushed = {}, {}
local purchases = 0
local impTouched, pushTouched, ordTouched, onlyPush = false, false, false, true
local first, firstN, last, lastN

local function readImp(item)
  local v = redis.call('HGET', imp, item)
  if not v then return nil, 0, {} end
  local bar = string.find(v, '|', 1, true)
  local ts = {}
  for t in string.gmatch(string.sub(v, bar + 1), '%-?%d+') do ts[#ts + 1] = t end
  return v, tonumber(string.sub(v, 1, bar - 1)), ts
end

for i = 22, #ARGV, 6 do
  local ts, kind, item = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local tsN = tonumber(ts)
  if kind ~= '3' then onlyPush = false end
  if kind == '4' then
    redis.call('ZADD', dis, ts, ARGV[i + 5])
    disTouched = true
    out[#out + 1] = 1
  elseif kind == '7' then
    local fresh = redis.call('ZADD', eids, 'NX', now, ARGV[i])
    if fresh == 1 and not optedOut then
      for key in string.gmatch(ARGV[i + 5], '[^\n]+') do
        redis.call('ZINCRBY', srch, 1, key)
        srchTouched = true
      end
    end
    out[#out + 1] = fresh
  elseif kind == '3' then
    local fresh = 1
    if not optedOut then
      -- GT keeps the latest push; CH counts a later time as new.
      fresh = redis.call('ZADD', push, 'GT', 'CH', ts, item)
      pushTouched = true
    end
    out[#out + 1] = fresh
  elseif kind == '2' then
    -- Impressions skip the dedup set (they would crowd the real events out
    -- of it): a retried impression has the same time, which the item's
    -- list already holds.
    local fresh = 1
    if not optedOut then
      local _, lc, times = readImp(item)
      for _, t in ipairs(times) do
        if t == ts then fresh = 0 end
      end
      if fresh == 1 and tsN > lc then
        local pos = #times + 1
        while pos > 1 and tonumber(times[pos - 1]) > tsN do pos = pos - 1 end
        table.insert(times, pos, ts)
        while #times > keep do table.remove(times, 1) end
        redis.call('HSET', imp, item, lc .. '|' .. table.concat(times, ','))
        impTouched = true
      end
    end
    out[#out + 1] = fresh
  elseif redis.call('ZADD', eids, 'NX', now, ARGV[i]) == 1 then
    if kind == '1' then
      -- GT keeps the latest purchase time when events arrive out of order.
      redis.call('ZADD', buy, 'GT', ts, item)
      purchases = purchases + 1
      if not optedOut then
        redis.call('ZADD', ord, ts, ARGV[i + 5] .. '|' .. ARGV[i])
        ordTouched = true
      end
    end
    if not optedOut and kind == '6' then
      redis.call('ZADD', dis, ts, ARGV[i + 5])
      disTouched = true
    elseif not optedOut and kind == '5' then
      redis.call('ZREM', dis, ARGV[i + 5])
    end
    if not optedOut then
      pushed[#pushed + 1] = ARGV[i + 4]
      local v, lc, times = readImp(item)
      if v then
        if tsN > lc then lc = tsN end
        local kept = {}
        for _, t in ipairs(times) do
          if tonumber(t) > lc then kept[#kept + 1] = t end
        end
        if #kept == 0 then
          redis.call('HDEL', imp, item)
        else
          redis.call('HSET', imp, item, lc .. '|' .. table.concat(kept, ','))
        end
      end
      if firstN == nil or tsN < firstN then first, firstN = ts, tsN end
      if lastN == nil or tsN > lastN then last, lastN = ts, tsN end
    end
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
end
if purchases > 0 then
  redis.call('ZREMRANGEBYRANK', buy, 0, ARGV[3])
  if not optedOut then redis.call('HINCRBY', meta, 'p', purchases) end
end
if firstN ~= nil then
  local cur = redis.call('HMGET', meta, 'f', 'l')
  if not cur[1] or firstN < tonumber(cur[1]) then redis.call('HSET', meta, 'f', first) end
  if not cur[2] or lastN > tonumber(cur[2]) then redis.call('HSET', meta, 'l', last) end
end
if impTouched then
  local n = redis.call('HLEN', imp)
  if n > impCap then
    -- Forget the items shown longest ago, a tenth more than needed so the
    -- scan does not repeat on every write.
    local all = redis.call('HGETALL', imp)
    local newest = {}
    for j = 1, #all, 2 do
      local v = all[j + 1]
      local t = string.match(v, '(%-?%d+)$')
      newest[#newest + 1] = {all[j], tonumber(t)}
    end
    table.sort(newest, function(a, b) return a[2] < b[2] end)
    local drop = n - impCap + math.floor(impCap / 10)
    for j = 1, math.min(drop, #newest) do redis.call('HDEL', imp, newest[j][1]) end
  end
  redis.call('PEXPIRE', imp, ARGV[10])
end
if pushTouched then
  redis.call('ZREMRANGEBYSCORE', push, '-inf', ARGV[12])
  redis.call('ZREMRANGEBYRANK', push, 0, ARGV[11])
  redis.call('PEXPIRE', push, ARGV[13])
end
if disTouched then
  redis.call('ZREMRANGEBYSCORE', dis, '-inf', '(' .. ARGV[17])
  redis.call('ZREMRANGEBYRANK', dis, 0, ARGV[16])
  redis.call('PEXPIRE', dis, ARGV[18])
end
if srchTouched then
  redis.call('ZREMRANGEBYRANK', srch, 0, ARGV[19])
  redis.call('PEXPIRE', srch, ARGV[4])
end
if ordTouched then
  redis.call('ZREMRANGEBYSCORE', ord, '-inf', ARGV[15])
  redis.call('ZREMRANGEBYRANK', ord, 0, ARGV[14])
  redis.call('PEXPIRE', ord, ARGV[4])
end
redis.call('ZREMRANGEBYSCORE', eids, '-inf', ARGV[6])
redis.call('ZREMRANGEBYRANK', eids, 0, ARGV[5])
if not onlyPush then
  for k = 1, 3 do redis.call('PEXPIRE', KEYS[k], ARGV[4]) end
  -- Every id in the dedup set is outside the window once it has not been
  -- written for that long, so it can go sooner than the profile. (Pushes
  -- do not use the dedup set: a batch of them alone leaves its TTL.)
  redis.call('PEXPIRE', eids, ARGV[7])
end
local pn = ''
if ARGV[20] ~= '' and not optedOut then
  pn = redis.call('GET', pnKey)
  if not pn then
    pn = ARGV[20]
    redis.call('SET', pnKey, pn)
  end
  redis.call('PEXPIRE', pnKey, ARGV[21])
end
out[#out + 1] = pn
return out
`)

// optOutScript sets or clears a user's opt-out flag. Opting out deletes
// the history, the impressions, the pushes, the orders and the activity
// fields of meta, keeping only the purchases and the dedup set (what
// purchase exclusion and idempotency need).
//
// KEYS: hist, buy, meta, eids, imp, push, ord, dis, srch
// ARGV: "1" (opt out) or "0" (opt in), ttl_ms
//
// The dismissals stay: they are the user's instruction, not tracking.
var optOutScript = redis.NewScript(`
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[1], KEYS[5], KEYS[6], KEYS[7], KEYS[9])
  redis.call('HDEL', KEYS[3], 'f', 'l', 'p')
  redis.call('HSET', KEYS[3], 'o', '1')
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
else
  redis.call('HDEL', KEYS[3], 'o')
end
return 1
`)

// globalScript appends a batch to the event stream and counts popularity.
// All its keys carry the {g} hash tag.
//
// KEYS: stream, global dedup set, opted-out users, seen users, dead
// pseudonyms, then the popularity bucket keys the batch touches.
// ARGV: now_ms, stream_maxlen, stream_minid ("" = no age trim),
//
//	dedup_trim (-(cap+1)), dedup_cutoff_ms, dedup_ttl_ms, optout_cutoff_ms
//	(opted-out users, and seen users, not seen since are forgotten),
//	seen_trim (-(cap+1)), seen_ttl_ms, nb (number of bucket keys), nb
//	bucket TTLs in ms, then 11 per event: dedup member, bucket index
//	(1..nb, 0 = not counted), popularity increment, the event's id, user,
//	item, type, time_ms, quantity, weight, and the user's pseudonym.
//
// The stream entry names the user by the pseudonym only (field n), never
// by the id; an event whose pseudonym is "" (an opted-out user) or dead
// (Delete destroyed it after the user's script returned it) is not
// appended, and does not put its user in the seen set.
//
// Returns the number of events that were new.
//
// Events of users in the opted-out set count in popularity (an anonymous
// aggregate) but are not appended to the stream, and refresh the user's
// entry there. Other users' events raise the user's score in the seen set
// to the event's time (the index segment selection pages through).
//
// Stream ids come from the caller's clock (now_ms-*) so the stream and
// ReadEvents agree with the Store's clock; if another writer's clock is
// ahead, the id continues from the stream's last entry instead, and if even
// that is refused (entries deleted past it) Redis picks the id ('*').
var globalScript = redis.NewScript(`
local stream, dd, oo, seen, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now = ARGV[1]
local nb = tonumber(ARGV[10])
local added = 0
local seenTouched = false
local id
for i = 11 + nb, #ARGV, 11 do
  if redis.call('ZADD', dd, 'NX', now, ARGV[i]) == 1 then
    local b = tonumber(ARGV[i + 1])
    if b > 0 then redis.call('ZINCRBY', KEYS[5 + b], ARGV[i + 2], ARGV[i + 5]) end
    if redis.call('ZSCORE', oo, ARGV[i + 4]) then
      redis.call('ZADD', oo, 'XX', now, ARGV[i + 4])
    elseif ARGV[i + 10] ~= '' and not redis.call('ZSCORE', dead, ARGV[i + 10]) then
      redis.call('ZADD', seen, 'GT', ARGV[i + 7], ARGV[i + 4])
      seenTouched = true
      if id == nil then
        id = now .. '-*'
        local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
        if #top > 0 then
          local ms = string.match(top[1][1], '^(%d+)')
          if tonumber(ms) > tonumber(now) then id = ms .. '-*' end
        end
      end
      local r = redis.pcall('XADD', stream, 'MAXLEN', '~', ARGV[2], id,
        'i', ARGV[i + 3], 'n', ARGV[i + 10], 'p', ARGV[i + 5], 't', ARGV[i + 6],
        's', ARGV[i + 7], 'q', ARGV[i + 8], 'w', ARGV[i + 9])
      if type(r) == 'table' and r.err then
        id = '*'
        redis.call('XADD', stream, 'MAXLEN', '~', ARGV[2], id,
          'i', ARGV[i + 3], 'n', ARGV[i + 10], 'p', ARGV[i + 5], 't', ARGV[i + 6],
          's', ARGV[i + 7], 'q', ARGV[i + 8], 'w', ARGV[i + 9])
      end
    end
    added = added + 1
  end
end
if added > 0 and ARGV[3] ~= '' then
  redis.call('XTRIM', stream, 'MINID', '~', ARGV[3])
end
for b = 1, nb do redis.call('PEXPIRE', KEYS[5 + b], ARGV[10 + b]) end
if seenTouched then
  redis.call('ZREMRANGEBYSCORE', seen, '-inf', ARGV[7])
  redis.call('ZREMRANGEBYRANK', seen, 0, ARGV[8])
  redis.call('PEXPIRE', seen, ARGV[9])
end
redis.call('ZREMRANGEBYSCORE', dd, '-inf', ARGV[5])
redis.call('ZREMRANGEBYRANK', dd, 0, ARGV[4])
redis.call('PEXPIRE', dd, ARGV[6])
redis.call('ZREMRANGEBYSCORE', oo, '-inf', ARGV[7])
return added
`)

// popularScript returns the top of the decayed sum of the popularity
// buckets, so only n items cross the network.
//
// Relative to the start of the current bucket the past buckets' weights do
// not change while that bucket is current, so their weighted union is
// computed once per bucket width and kept in the "past" key. Each call then
// needs the top n of past + current (both scaled by the decay since the
// current bucket began, which does not change the ranking), found without
// building that union — which for 100,000 items blocked Redis for hundreds
// of milliseconds every refresh, and with it every profile load: the top m
// of each set are the candidates, their exact sums are read with ZMSCORE,
// and no item outside both lists can score more than the m-th past score
// plus the m-th current score (the threshold algorithm of Fagin et al.);
// when the n-th candidate reaches that bound the answer is exact,
// otherwise m doubles. Items tied at the n-th score may be chosen in any
// order.
//
// KEYS: past, current bucket, then the past bucket keys (newest first). All
// in the {g} slot.
// ARGV: past_ttl_ms, current_factor, last rank to return (n-1), then one
// weight per past bucket.
// Returns member, score, member, score, ... best first.
var popularScript = redis.NewScript(`
local past, cur = KEYS[1], KEYS[2]
local np = #KEYS - 2
if np > 0 and redis.call('EXISTS', past) == 0 then
  local args = {'ZUNIONSTORE', past, np}
  for i = 1, np do args[#args + 1] = KEYS[2 + i] end
  args[#args + 1] = 'WEIGHTS'
  for i = 1, np do args[#args + 1] = ARGV[3 + i] end
  if redis.call(unpack(args)) > 0 then redis.call('PEXPIRE', past, ARGV[1]) end
end
local f, n = tonumber(ARGV[2]), tonumber(ARGV[3]) + 1
local m = n
while true do
  local P = redis.call('ZREVRANGE', past, 0, m - 1, 'WITHSCORES')
  local C = redis.call('ZREVRANGE', cur, 0, m - 1, 'WITHSCORES')
  local bound = 0
  if #P == 2 * m then bound = bound + tonumber(P[#P]) end
  if #C == 2 * m then bound = bound + tonumber(C[#C]) end
  local names, seen = {}, {}
  for _, L in ipairs({P, C}) do
    for i = 1, #L, 2 do
      if not seen[L[i]] then seen[L[i]] = true; names[#names + 1] = L[i] end
    end
  end
  local top = {}
  for lo = 1, #names, 1000 do -- unpack's stack is bounded
    local hi = math.min(lo + 999, #names)
    local ps = redis.call('ZMSCORE', past, unpack(names, lo, hi))
    local cs = redis.call('ZMSCORE', cur, unpack(names, lo, hi))
    for i = lo, hi do
      local p, c = tonumber(ps[i - lo + 1]) or 0, tonumber(cs[i - lo + 1]) or 0
      top[i] = {names[i], p + c, p * f + c * f}
    end
  end
  table.sort(top, function(a, b)
    if a[2] ~= b[2] then return a[2] > b[2] end
    return a[1] > b[1]
  end)
  local exhausted = #P < 2 * m and #C < 2 * m
  if exhausted or (#top >= n and top[n][2] >= bound) then
    local r = {}
    for i = 1, math.min(n, #top) do
      r[#r + 1] = top[i][1]
      r[#r + 1] = string.format('%.17g', top[i][3])
    end
    return r
  end
  m = m * 2
end
`)

// trendingScript ranks items by the ratio of their short-window rate to
// their whole-window rate, both smoothed by a prior.
//
// The unweighted sum of the past buckets does not change while the current
// bucket is current, so it is computed once per bucket width and kept in the
// "long" key, like popularScript's "past".
//
// KEYS: long, current bucket, scratch 1, scratch 2, then the past bucket
// keys (newest first). All in the {g} slot.
// ARGV: long_ttl_ms, last rank to return (n-1), number of past buckets in
// the short window, short window hours, whole window hours, prior (weight
// per hour), least short-window weight.
// Returns member, ratio, member, ratio, ... best first; only ratios > 1.
var trendingScript = redis.NewScript(`
local long, cur, s1, s2 = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local np = #KEYS - 4
if np > 0 and redis.call('EXISTS', long) == 0 then
  local args = {'ZUNIONSTORE', long, np}
  for i = 1, np do args[#args + 1] = KEYS[4 + i] end
  if redis.call(unpack(args)) > 0 then redis.call('PEXPIRE', long, ARGV[1]) end
end
local ns = math.min(tonumber(ARGV[3]), np)
local args = {'ZUNIONSTORE', s1, 1 + ns, cur}
for i = 1, ns do args[#args + 1] = KEYS[4 + i] end
redis.call(unpack(args))
local shortH, longH, prior = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local cand = redis.call('ZRANGEBYSCORE', s1, ARGV[7], '+inf', 'WITHSCORES')
for j = 1, #cand, 2 do
  local m = cand[j]
  local total = tonumber(redis.call('ZSCORE', long, m) or '0') + tonumber(redis.call('ZSCORE', cur, m) or '0')
  local ratio = (tonumber(cand[j + 1]) / shortH + prior) / (total / longH + prior)
  if ratio > 1 then redis.call('ZADD', s2, ratio, m) end
end
local r = redis.call('ZREVRANGE', s2, 0, ARGV[2], 'WITHSCORES')
redis.call('DEL', s1, s2)
return r
`)

// popularityOfScript returns the decayed popularity (as Popular computes
// it) of the given items.
//
// KEYS: past, current bucket, then the past bucket keys (newest first).
// ARGV: past_ttl_ms, current_factor, number of items n, n item ids, then
// one weight per past bucket.
var popularityOfScript = redis.NewScript(`
local past, cur = KEYS[1], KEYS[2]
local np = #KEYS - 2
local n = tonumber(ARGV[3])
if np > 0 and redis.call('EXISTS', past) == 0 then
  local args = {'ZUNIONSTORE', past, np}
  for i = 1, np do args[#args + 1] = KEYS[2 + i] end
  args[#args + 1] = 'WEIGHTS'
  for i = 1, np do args[#args + 1] = ARGV[3 + n + i] end
  if redis.call(unpack(args)) > 0 then redis.call('PEXPIRE', past, ARGV[1]) end
end
local f = tonumber(ARGV[2])
local out = {}
for i = 4, 3 + n do
  local s = tonumber(redis.call('ZSCORE', past, ARGV[i]) or '0') + tonumber(redis.call('ZSCORE', cur, ARGV[i]) or '0')
  out[#out + 1] = tostring(s * f)
end
return out
`)
