--[[
Renew the lease of a held semaphore permit.

KEYS[1] holders (zset): permit id -> lease deadline (server time, ms)
ARGV[1] permit (string): the permit id
ARGV[2] ttl_ms (int > 0, ms): the new lease, from now, in milliseconds

Returns: 1 if the permit was held and its lease now ends ttl_ms from now, 0 if it was released or had expired
]]
--- @include "time"
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then
  return 0
end
local now = server_ms()
if tonumber(score) <= now then
  -- Too late: the slot may already be counted as free by an acquirer.
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
