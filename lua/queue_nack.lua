--[[
Give a delivery back: to the front of pending, to the delayed set, or to the dead letters.

KEYS[1] pending (list): ids ready for delivery; a message given back goes to the front
KEYS[2] inflight (zset): ids being worked on (score: lease deadline, ms of server TIME)
KEYS[3] delayed (zset): ids waiting for their due time (score: due, ms of server TIME)
KEYS[4] deliveries (hash): id -> number of deliveries so far
KEYS[5] dead (zset): dead-lettered ids (score: when they died, ms of server TIME)
KEYS[6] why (hash): dead id -> why it died
KEYS[7] dedup (hash): dedup key -> id
KEYS[8] dedupof (hash): id -> dedup key
KEYS[9] signal (list): wake-up tokens for blocked consumers (bounded length)
ARGV[1] id: the message id
ARGV[2] delivery: the delivery number of the receipt
ARGV[3] delay_ms: 0 = ready again now, else milliseconds until it is ready
ARGV[4] max_deliveries: a message delivered this often goes to the dead letters instead

Returns: 0 when the delivery is no longer current (nothing changed), 1 when the message is
  ready again, 2 when it is delayed, 3 when it was dead-lettered
Redis: 6.2
]]
local pending, inflight, delayed, deliveries = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local dead, why, dedup, dedupof, signal = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local id = ARGV[1]
local delay = tonumber(ARGV[3])
local max_deliveries = tonumber(ARGV[4])

if not redis.call('ZSCORE', inflight, id) then return 0 end
local count = redis.call('HGET', deliveries, id)
if count ~= ARGV[2] then return 0 end
redis.call('ZREM', inflight, id)

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

if tonumber(count) >= max_deliveries then
  redis.call('ZADD', dead, now, id)
  redis.call('HSET', why, id, 'nacked')
  local key = redis.call('HGET', dedupof, id)
  if key then
    if redis.call('HGET', dedup, key) == id then redis.call('HDEL', dedup, key) end
    redis.call('HDEL', dedupof, id)
  end
  return 3
end
if delay > 0 then
  redis.call('ZADD', delayed, now + delay, id)
  return 2
end
redis.call('LPUSH', pending, id)
if redis.call('LLEN', signal) < 1024 then redis.call('RPUSH', signal, '1') end
return 1
