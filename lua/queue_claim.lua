--[[
Acknowledge deliveries, requeue expired leases and due delayed messages, then claim messages.

KEYS[1] pending (list): ids ready for delivery; redelivered ids go to the front
KEYS[2] inflight (zset): ids being worked on (score: lease deadline, ms of server TIME)
KEYS[3] delayed (zset): ids waiting for their due time (score: due, ms of server TIME)
KEYS[4] payload (hash): id -> payload bytes
KEYS[5] deliveries (hash): id -> number of deliveries so far
KEYS[6] dead (zset): dead-lettered ids (score: when they died, ms of server TIME)
KEYS[7] why (hash): dead id -> why it died ("expired" or "nacked")
KEYS[8] dedup (hash): dedup key -> id
KEYS[9] dedupof (hash): id -> dedup key
KEYS[10] signal (list): wake-up tokens for blocked consumers (bounded length)
ARGV[1] lease_ms: lease of each claimed message, in milliseconds
ARGV[2] max_deliveries: an expired lease of a message delivered this often dead-letters it
ARGV[3] n: how many messages to claim (0 = none: ack and housekeeping only)
ARGV[4] reclaim: at most this many expired leases and due delayed messages to move
ARGV[5] acks: "id delivery id delivery ..." deliveries to acknowledge first ("" = none)

Returns: {acked, reclaimed, wait_ms, id1, payload1, deliveries1, id2, ...}: acked counts
  the acks that matched a current delivery; reclaimed counts the expired leases moved;
  wait_ms (only when nothing was claimed) is the time until the next delayed message is
  due or the next lease expires, -1 if neither exists
Redis: 6.2
]]
local pending, inflight, delayed, payload = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local deliveries, dead, why, dedup, dedupof, signal =
  KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local lease = tonumber(ARGV[1])
local max_deliveries = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local reclaim_limit = tonumber(ARGV[4])
local SIGNAL_CAP = 1024

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function forget_dedup(ids)
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

local function wake(k)
  local room = SIGNAL_CAP - redis.call('LLEN', signal)
  if k > room then k = room end
  if k > 0 then
    local tokens = {}
    for i = 1, k do tokens[i] = '1' end
    redis.call('RPUSH', signal, unpack(tokens))
  end
end

-- 1. Acknowledge: only a delivery that is still in flight under the same delivery number.
local acked = 0
if ARGV[5] ~= '' then
  local ids, nums, seen = {}, {}, {}
  for id, d in string.gmatch(ARGV[5], '(%S+) (%S+)') do
    if not seen[id] then
      seen[id] = true
      ids[#ids + 1] = id
      nums[#nums + 1] = d
    end
  end
  if #ids > 0 then
    local scores = redis.call('ZMSCORE', inflight, unpack(ids))
    local counts = redis.call('HMGET', deliveries, unpack(ids))
    local done = {}
    for i = 1, #ids do
      if scores[i] and counts[i] == nums[i] then done[#done + 1] = ids[i] end
    end
    if #done > 0 then
      redis.call('ZREM', inflight, unpack(done))
      redis.call('HDEL', payload, unpack(done))
      redis.call('HDEL', deliveries, unpack(done))
      forget_dedup(done)
      acked = #done
    end
  end
end

-- 2. Expired leases go back to the front of pending (earliest expiry first), or to the
--    dead letters once delivered max_deliveries times. Bounded per call.
local reclaimed = 0
local expired = redis.call('ZRANGEBYSCORE', inflight, '-inf', now, 'LIMIT', 0, reclaim_limit)
if #expired > 0 then
  redis.call('ZREM', inflight, unpack(expired))
  local counts = redis.call('HMGET', deliveries, unpack(expired))
  local back, buried = {}, {}
  for i = #expired, 1, -1 do
    if (tonumber(counts[i]) or 0) >= max_deliveries then
      buried[#buried + 1] = expired[i]
    else
      back[#back + 1] = expired[i]
    end
  end
  if #back > 0 then
    redis.call('LPUSH', pending, unpack(back))
    wake(#back)
  end
  if #buried > 0 then
    local z, w = {}, {}
    for i = 1, #buried do
      z[#z + 1] = now
      z[#z + 1] = buried[i]
      w[#w + 1] = buried[i]
      w[#w + 1] = 'expired'
    end
    redis.call('ZADD', dead, unpack(z))
    redis.call('HSET', why, unpack(w))
    forget_dedup(buried)
  end
  reclaimed = #expired
end

-- 3. Due delayed messages join the tail of pending. Bounded per call.
local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, reclaim_limit)
if #due > 0 then
  redis.call('ZREM', delayed, unpack(due))
  redis.call('RPUSH', pending, unpack(due))
  wake(#due)
end

-- 4. Claim.
local out = {acked, reclaimed, -1}
if n > 0 then
  local ids = redis.call('LPOP', pending, n)
  if ids then
    local bodies = redis.call('HMGET', payload, unpack(ids))
    local z = {}
    local deadline = now + lease
    for i = 1, #ids do
      local id = ids[i]
      if bodies[i] then
        z[#z + 1] = deadline
        z[#z + 1] = id
        out[#out + 1] = id
        out[#out + 1] = bodies[i]
        out[#out + 1] = redis.call('HINCRBY', deliveries, id, 1)
      else
        -- An id without a payload was removed under our feet (purge): drop it.
        redis.call('HDEL', deliveries, id)
      end
    end
    if #z > 0 then redis.call('ZADD', inflight, unpack(z)) end
  end
end

if n > 0 and #out == 3 then
  if redis.call('LLEN', pending) > 0 then
    out[3] = 0  -- only payload-less ids were popped: try again at once
  else
    -- Nothing is ready, so every wake-up token left is stale: clear them, and a waiter
    -- then blocks until a push (or a requeue) adds a fresh one.
    redis.call('DEL', signal)
    local wait = -1
    local nextd = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
    if nextd[2] then wait = math.max(0, tonumber(nextd[2]) - now) end
    local nextl = redis.call('ZRANGE', inflight, 0, 0, 'WITHSCORES')
    if nextl[2] then
      local w = math.max(0, tonumber(nextl[2]) - now)
      if wait < 0 or w < wait then wait = w end
    end
    out[3] = wait
  end
end
return out
