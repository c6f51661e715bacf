--[[
Delete a batch of a queue's messages: every state, or only the dead letters.

KEYS[1] pending (list): ids ready for delivery
KEYS[2] inflight (zset): ids being worked on
KEYS[3] delayed (zset): ids waiting for their due time
KEYS[4] dead (zset): dead-lettered ids
KEYS[5] payload (hash): id -> payload bytes
KEYS[6] deliveries (hash): id -> number of deliveries
KEYS[7] why (hash): dead id -> why it died
KEYS[8] dedup (hash): dedup key -> id
KEYS[9] dedupof (hash): id -> dedup key
KEYS[10] signal (list): wake-up tokens for blocked consumers
ARGV[1] limit: at most this many ids taken from each structure in this call
ARGV[2] dead_only: "1" to delete only dead letters, "0" for everything

Returns: {deleted, left}: messages deleted now, and messages still in the purged
  structures (call again while left > 0)
Redis: 6.2
]]
local pending, inflight, delayed, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local payload, deliveries, why, dedup, dedupof, signal =
  KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local limit = tonumber(ARGV[1])
local dead_only = ARGV[2] == '1'

local ids = {}
local function take_zset(key)
  local got = redis.call('ZRANGE', key, 0, limit - 1)
  if #got > 0 then
    redis.call('ZREM', key, unpack(got))
    for i = 1, #got do ids[#ids + 1] = got[i] end
  end
end

take_zset(dead)
if not dead_only then
  local got = redis.call('LPOP', pending, limit)
  if got then
    for i = 1, #got do ids[#ids + 1] = got[i] end
  end
  take_zset(inflight)
  take_zset(delayed)
end

if #ids > 0 then
  for i = 1, #ids, 1000 do
    local chunk = {}
    for j = i, math.min(i + 999, #ids) do chunk[#chunk + 1] = ids[j] end
    local keys = redis.call('HMGET', dedupof, unpack(chunk))
    for j = 1, #chunk do
      if keys[j] and redis.call('HGET', dedup, keys[j]) == chunk[j] then
        redis.call('HDEL', dedup, keys[j])
      end
    end
    redis.call('HDEL', dedupof, unpack(chunk))
    redis.call('HDEL', payload, unpack(chunk))
    redis.call('HDEL', deliveries, unpack(chunk))
    redis.call('HDEL', why, unpack(chunk))
  end
end

local left = redis.call('ZCARD', dead)
if not dead_only then
  left = left + redis.call('LLEN', pending) + redis.call('ZCARD', inflight)
    + redis.call('ZCARD', delayed)
  if left == 0 then redis.call('DEL', signal) end
end
return {#ids, left}
