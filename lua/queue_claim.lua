--[[
Acknowledge deliveries, requeue expired leases and due delayed messages, then claim messages.

KEYS[1] pending (list): entries "id/deliveries" ready (priority 0); given back: to the front
KEYS[2] inflight (zset): entries "id/delivery" being worked on (score: lease deadline, ms)
KEYS[3] delayed (zset): entries "id/deliveries" waiting until their score (ms)
KEYS[4] payload (hash): id -> payload bytes
KEYS[5] dead (zset): dead-lettered ids (score: when they died, ms of server TIME)
KEYS[6] deadinfo (hash): dead id -> "deliveries reason" (reason: expired or nacked)
KEYS[7] dedup (hash): dedup key -> id
KEYS[8] dedupof (hash): id -> dedup key
KEYS[9] signal (list): wake-up tokens for blocked consumers (bounded length)
KEYS[10] pending1 (list): ready entries of priority 1 (claimed before pending)
KEYS[11] pending2 (list): ready entries of priority 2 (claimed before pending1)
KEYS[12] pending3 (list): ready entries of priority 3 (claimed first)
ARGV[1] lease_ms (int > 0, ms): lease of each claimed message, in milliseconds
ARGV[2] max_deliveries (int > 0): an expired lease of a message delivered this often dead-letters it
ARGV[3] n (int >= 0): how many messages to claim (0 = none: ack and housekeeping only)
ARGV[4] reclaim (int >= 0): at most this many expired leases and due delayed messages to move
ARGV[5] acks (receipts or ''): receipts "id/delivery" separated by spaces, acknowledged first ("" = none)

Returns: {"acked reclaimed wait_ms dead id1 deliveries1 id2 deliveries2 ...", payload1,
  payload2, ...}: one string of space-separated fields (clients read one bulk string much
  faster than several integers), then the payloads of the claimed messages in order.
  acked counts the acks that matched a current delivery; reclaimed counts the expired
  leases moved; dead how many of those went to the dead letters (their last allowed
  delivery's lease ran out); wait_ms (only when nothing was claimed) is the time until the next
  delayed message is due or the next lease expires, -1 if neither exists
Redis: 6.2
]]
--- @include "queue_wake"
--- @include "time"
--- @include "queue_levels"
local pending, inflight, delayed, payload = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local dead, deadinfo, dedup, dedupof, signal = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local lease = tonumber(ARGV[1])
local max_deliveries = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local reclaim_limit = tonumber(ARGV[4])
-- Ready lists by priority + 1 (see queue_levels).
local lists = {pending, KEYS[10], KEYS[11], KEYS[12]}

local now = server_ms()

local function forget_dedup(all)
  -- Only ids ending in DEDUP_MARK were pushed with a dedup key.
  local ids = {}
  for i = 1, #all do
    if string.byte(all[i], -1) == DEDUP_MARK_BYTE then ids[#ids + 1] = all[i] end
  end
  if #ids == 0 then return end
  local keys = redis.call('HMGET', dedupof, unpack(ids))
  local owned = {}
  for i = 1, #ids do
    if keys[i] then
      -- Only drop the mapping if it still points at this message.
      if redis.call('HGET', dedup, keys[i]) == ids[i] then redis.call('HDEL', dedup, keys[i]) end
      owned[#owned + 1] = ids[i]
    end
  end
  if #owned > 0 then redis.call('HDEL', dedupof, unpack(owned)) end
end

-- 1. Acknowledge. The in-flight entry is the receipt itself, so removing it is the check:
--    a receipt of an older delivery (or an applied ack, re-sent) matches nothing.
local acked = 0
local acks = ARGV[5]
if acks ~= '' then
  local done = {}
  if not string.find(acks, ' ', 1, true) then
    -- One receipt: the consumer loop's case, without the tables.
    if redis.call('ZREM', inflight, acks) == 1 then done[1] = string.match(acks, '^[^/]+') end
  else
    local receipts, seen = {}, {}
    for r in string.gmatch(acks, '%S+') do
      if not seen[r] then
        seen[r] = true
        receipts[#receipts + 1] = r
      end
    end
    local scores = redis.call('ZMSCORE', inflight, unpack(receipts))
    local gone = {}
    for i = 1, #receipts do
      if scores[i] then
        gone[#gone + 1] = receipts[i]
        done[#done + 1] = string.match(receipts[i], '^[^/]+')
      end
    end
    if #gone > 0 then redis.call('ZREM', inflight, unpack(gone)) end
  end
  if #done > 0 then
    redis.call('HDEL', payload, unpack(done))
    forget_dedup(done)
    acked = #done
  end
end

-- 2. Expired leases go back to the front of their priority's pending list (earliest expiry first), or to the
--    dead letters once delivered max_deliveries times. Bounded per call.
local reclaimed, buried_count = 0, 0
local expired = redis.call('ZRANGEBYSCORE', inflight, '-inf', now, 'LIMIT', 0, reclaim_limit)
if #expired > 0 then
  redis.call('ZREM', inflight, unpack(expired))
  local back, z, info, buried = {}, {}, {}, {}
  for i = #expired, 1, -1 do
    local id, d = string.match(expired[i], '^([^/]+)/(%d+)$')
    if not id then id, d = expired[i], '0' end
    if tonumber(d) >= max_deliveries then
      z[#z + 1] = now
      z[#z + 1] = id
      info[#info + 1] = id
      info[#info + 1] = d .. ' expired'
      buried[#buried + 1] = id
    else
      back[#back + 1] = expired[i]
    end
  end
  if #back > 0 then
    push_by_level('LPUSH', lists, back)
    wake(signal, #back)
  end
  if #buried > 0 then
    redis.call('ZADD', dead, unpack(z))
    redis.call('HSET', deadinfo, unpack(info))
    forget_dedup(buried)
    buried_count = #buried
  end
  reclaimed = #expired
end

-- 3. Due delayed messages join the tail of their priority's pending list. Bounded per call.
--    ZCARD first: most queues have nothing delayed, and it costs a quarter of the sweep.
local due = {}
if redis.call('ZCARD', delayed) > 0 then
  due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, reclaim_limit)
end
if #due > 0 then
  redis.call('ZREM', delayed, unpack(due))
  push_by_level('RPUSH', lists, due)
  wake(signal, #due)
end

-- 4. Claim. out[1] is the head string, built last; the payloads follow it.
local out = {false}
local claimed, wait = '', -1
local deadline = now + lease
if n == 1 then
  -- One message: the consumer loop's case, without the tables.
  local entry = redis.call('LPOP', first_ready(lists))
  if entry then
    local id, d = string.match(entry, '^([^/]+)/(%d+)$')
    if not id then id, d = entry, '0' end
    local count = tonumber(d) + 1
    local body = redis.call('HGET', payload, id)
    -- An entry without a payload was purged under our feet: drop it.
    if body then
      redis.call('ZADD', inflight, deadline, id .. '/' .. count)
      claimed = ' ' .. id .. ' ' .. count
      out[2] = body
    end
  end
elseif n > 1 then
  -- Highest priority first; within a level, from the front.
  local entries = {}
  for lv = higher_ready(lists) and 4 or 1, 1, -1 do
    if #entries < n then
      local got = redis.call('LPOP', lists[lv], n - #entries)
      if got then
        for i = 1, #got do entries[#entries + 1] = got[i] end
      end
    end
  end
  if #entries > 0 then
    local ids, counts = {}, {}
    for i = 1, #entries do
      local id, d = string.match(entries[i], '^([^/]+)/(%d+)$')
      ids[i] = id or entries[i]
      counts[i] = (tonumber(d) or 0) + 1
    end
    local bodies = redis.call('HMGET', payload, unpack(ids))
    local z, meta = {}, {}
    for i = 1, #ids do
      if bodies[i] then
        z[#z + 1] = deadline
        z[#z + 1] = ids[i] .. '/' .. counts[i]
        meta[#meta + 1] = ids[i]
        meta[#meta + 1] = counts[i]
        out[#out + 1] = bodies[i]
      end
    end
    if #z > 0 then
      redis.call('ZADD', inflight, unpack(z))
      claimed = ' ' .. table.concat(meta, ' ')
    end
  end
end

if n > 0 and #out == 1 then
  if redis.call('LLEN', first_ready(lists)) > 0 then
    wait = 0  -- only purged entries were popped: try again at once
  else
    -- Nothing is ready, so every wake-up token left is stale: clear them, and a waiter
    -- then blocks until a push (or a requeue) adds a fresh one.
    redis.call('DEL', signal)
    local nextd = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
    if nextd[2] then wait = math.max(0, tonumber(nextd[2]) - now) end
    local nextl = redis.call('ZRANGE', inflight, 0, 0, 'WITHSCORES')
    if nextl[2] then
      local w = math.max(0, tonumber(nextl[2]) - now)
      if wait < 0 or w < wait then wait = w end
    end
  end
end
out[1] = string.format('%d %d %d %d', acked, reclaimed, wait, buried_count) .. claimed
return out
