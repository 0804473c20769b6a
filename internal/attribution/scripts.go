package attribution

import "github.com/redis/go-redis/v9"

// An answer record is kept in two keys of the user's hash slot:
//
//	idx  sorted set: recommendation id -> answer time (ms)
//	rec  hash: recommendation id -> record; "\0" .. id -> the marks
//
// A record is "<header length>:<header><items>", the header encoded by Go
// (the script only hands it back) and the items each as "<length>:<id>", in
// answer order, so a position is found without any delimiter an id could
// contain. The marks of an answer are one character per (position, event
// type): "1" once counted. Record ids are hex, so "\0" .. id never collides.
//
// An item page's answer (no user) is kept in a key of its own, a hash tagged
// by the answer's id: "r" -> the record (as above), "m" -> its marks. The
// key expires with the window; nothing in it names a user.

// luaItemPosition finds an item's 1-based position in a record's items.
const luaItemPosition = `
local function position(rec, item)
  local c = string.find(rec, ":", 1, true)
  local pos = c + 1 + tonumber(string.sub(rec, 1, c - 1))
  local n = 0
  while pos <= #rec do
    c = string.find(rec, ":", pos, true)
    if not c then return 0 end
    local l = tonumber(string.sub(rec, pos, c - 1))
    n = n + 1
    if string.sub(rec, c + 1, c + l) == item then return n end
    pos = c + 1 + l
  end
  return 0
end
local function header(rec)
  local c = string.find(rec, ":", 1, true)
  return string.sub(rec, c + 1, c + tonumber(string.sub(rec, 1, c - 1)))
end
`

// recordScript stores one answer and keeps the user's answers bounded: at
// most cap (the newest), none older than the window.
//
// KEYS: idx, rec. ARGV: id, time ms, record, cap, oldest ms kept, ttl ms.
var recordScript = redis.NewScript(`
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
local drop = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[5])
local n = redis.call('ZCARD', KEYS[1]) - #drop
local cap = tonumber(ARGV[4])
if n > cap then
  local more = redis.call('ZRANGE', KEYS[1], #drop, #drop + n - cap - 1)
  for _, id in ipairs(more) do drop[#drop + 1] = id end
end
for _, id in ipairs(drop) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id, '\0' .. id)
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return #drop
`)

// attributeScript matches a user's events to their answers and marks what
// it counts. Per event it returns three values: the answer id ("" when
// unattributed), the item's position (0 unattributed, -1 already counted
// for that answer and type) and the answer's header.
//
// KEYS: idx, rec. ARGV: window ms, skew ms, then per event: recommendation
// id ("" for last touch), item, type (1 view, 2 cart, 3 purchase), time ms.
var attributeScript = redis.NewScript(luaItemPosition + `
local window, skew = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, 4 do
  local id, item, typ, t = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local found, pos, rec = '', 0, nil
  local lo, hi = t - window, t + skew
  if id ~= '' then
    local at = redis.call('ZSCORE', KEYS[1], id)
    if at and tonumber(at) >= lo and tonumber(at) <= hi then
      rec = redis.call('HGET', KEYS[2], id)
      if rec then
        pos = position(rec, item)
        if pos > 0 then found = id end
      end
    end
  else
    local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], hi, lo)
    for _, cand in ipairs(ids) do
      local r = redis.call('HGET', KEYS[2], cand)
      if r then
        local p = position(r, item)
        if p > 0 then found, pos, rec = cand, p, r break end
      end
    end
  end
  local head = ''
  if found ~= '' then
    head = header(rec)
    local mk = '\0' .. found
    local marks = redis.call('HGET', KEYS[2], mk) or ''
    local at = (pos - 1) * 3 + typ
    if string.sub(marks, at, at) == '1' then
      pos = -1
    else
      if #marks < at then marks = marks .. string.rep('0', at - #marks) end
      marks = string.sub(marks, 1, at - 1) .. '1' .. string.sub(marks, at + 1)
      redis.call('HSET', KEYS[2], mk, marks)
    end
  end
  out[#out + 1] = found
  out[#out + 1] = pos
  out[#out + 1] = head
end
return out
`)

// recordPageScript stores an item page's answer; its key expires with the
// window.
//
// KEYS: the answer's key. ARGV: record, ttl ms.
var recordPageScript = redis.NewScript(`
redis.call('HSET', KEYS[1], 'r', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// attributePageScript matches events that carry an item page's answer id
// to that answer and marks what it counts (the marks, once per position and
// type, are the answer's, whoever sent the event). Per event it returns the
// same three values as attributeScript.
//
// KEYS: the answer's key. ARGV: answer id, window ms, skew ms, then per
// event: item, type (1 view, 2 cart, 3 purchase), time ms.
var attributePageScript = redis.NewScript(luaItemPosition + `
local rec = redis.call('HGET', KEYS[1], 'r')
local window, skew = tonumber(ARGV[2]), tonumber(ARGV[3])
local head, at = '', nil
if rec then
  head = header(rec)
  at = tonumber(string.match(head, '^%-?%d+'))
end
local out = {}
for i = 4, #ARGV, 3 do
  local item, typ, t = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local found, pos, h = '', 0, ''
  if at and at >= t - window and at <= t + skew then
    pos = position(rec, item)
    if pos > 0 then
      found, h = ARGV[1], head
      local marks = redis.call('HGET', KEYS[1], 'm') or ''
      local k = (pos - 1) * 3 + typ
      if string.sub(marks, k, k) == '1' then
        pos = -1
      else
        if #marks < k then marks = marks .. string.rep('0', k - #marks) end
        marks = string.sub(marks, 1, k - 1) .. '1' .. string.sub(marks, k + 1)
        redis.call('HSET', KEYS[1], 'm', marks)
      end
    end
  end
  out[#out + 1] = found
  out[#out + 1] = pos
  out[#out + 1] = h
end
return out
`)
