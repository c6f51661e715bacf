--[[
Delete a batch of a queue's messages: every state, or only the dead letters.

KEYS[1] pending (list): entries "id/deliveries" ready for delivery
KEYS[2] inflight (zset): entries "id/delivery" being worked on
KEYS[3] delayed (zset): entries "id/deliveries" waiting for their due time
KEYS[4] dead (zset): dead-lettered ids
KEYS[5] payload (hash): id -> payload bytes
KEYS[6] deadinfo (hash): dead id -> "deliveries reason"
KEYS[7] dedup (hash): dedup key -> id
KEYS[8] dedupof (hash): id -> dedup key
KEYS[9] signal (list): wake-up tokens for blocked consumers
KEYS[10] pending1 (list): ready entries of priority 1
KEYS[11] pending2 (list): ready entries of priority 2
KEYS[12] pending3 (list): ready entries of priority 3
ARGV[1] limit (int > 0): at most this many entries taken from each structure in this call
ARGV[2] dead_only (0|1): "1" to delete only dead letters, "0" for everything

Returns: {deleted, left}: messages deleted now, and messages still in the purged
  structures (call again while left > 0)
Redis: 6.2
]]
local pending, inflight, delayed, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local payload, deadinfo, dedup, dedupof, signal = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local limit = tonumber(ARGV[1])
local dead_only = ARGV[2] == '1'

local ids = {}
local function add(entries)
  for i = 1, #entries do ids[#ids + 1] = string.match(entries[i], '^[^/]+') end
end
local function take_zset(key)
  local got = redis.call('ZRANGE', key, 0, limit - 1)
  if #got > 0 then
    redis.call('ZREM', key, unpack(got))
    add(got)
  end
end

take_zset(dead)
if not dead_only then
  for _, key in ipairs({KEYS[12], KEYS[11], KEYS[10]}) do
    add(redis.call('LPOP', key, limit) or {})
  end
  add(redis.call('LPOP', pending, limit) or {})
  take_zset(inflight)
  take_zset(delayed)
end

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
  redis.call('HDEL', deadinfo, unpack(chunk))
end

local left = redis.call('ZCARD', dead)
if not dead_only then
  left = left + redis.call('LLEN', pending) + redis.call('ZCARD', inflight)
    + redis.call('LLEN', KEYS[10]) + redis.call('LLEN', KEYS[11]) + redis.call('LLEN', KEYS[12])
    + redis.call('ZCARD', delayed)
  if left == 0 then redis.call('DEL', signal) end
end
return {#ids, left}
