--[[
Take a permit of a counting semaphore if fewer than limit live permits are held.

KEYS[1] holders (zset): permit id -> lease deadline (server time, ms)
KEYS[2] config (string): the stored configuration "<limit>"; the first call stores its ARGV[2] here
ARGV[1] permit (string): the caller's random permit id
ARGV[2] limit (int > 0): how many permits may be held at once; must equal the stored one
ARGV[3] ttl_ms (int > 0, ms): lease of the permit in milliseconds

Returns: {1, ttl_ms} when the permit is held (a re-sent call for a held permit renews it),
  {0, ms until the earliest lease ends} when all permits are taken. A limit other than
  the stored one fails with CONFIGMISMATCH and takes nothing.
]]
--- @include "time"
local stored = redis.call('GET', KEYS[2])
if stored and stored ~= ARGV[2] then
--- @include "config"
  return config_mismatch(stored, ARGV[2])
end
local now = server_ms()
-- Leases that ended belong to crashed or stalled holders: their slots are free again.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not stored then
  -- The first caller stores its limit, for good (the holders come and go, the
  -- configuration stays: reconfigure changes it).
  redis.call('SET', KEYS[2], ARGV[2])
end
local ttl = tonumber(ARGV[3])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  if redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
  return {1, ttl}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(first[2]) - now}
