--[[
Replace a semaphore's stored limit (the explicit way to change it).

KEYS[1] holders (zset): permit id -> lease deadline (server time, ms)
KEYS[2] config (string): the stored configuration "<limit>", replaced by ARGV[1]
KEYS[3] signal (list): wake-up tokens that waiters BLPOP
ARGV[1] limit (int > 0): the new limit
ARGV[2] signal_ttl_ms (int > 0, ms): lifetime of unconsumed wake-up tokens

Returns: the previous configuration ('' when none was stored). More live permits than the
  new limit fail with OUTOFBOUNDS and change nothing (permits are never revoked: retry
  once enough are released or their leases ended).
]]
--- @include "time"
local previous = redis.call('GET', KEYS[2]) or ''
local now = server_ms()
local live = redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
local limit = tonumber(ARGV[1])
if live > limit then
  return redis.error_reply('OUTOFBOUNDS KEYS[1] holds ' .. live .. ' live permits, more ' ..
                           'than the new limit ' .. ARGV[1] .. ': nothing changed')
end
-- The LPUSH is the first write: a signal key of the wrong type fails the call before the
-- configuration is replaced.
local free = limit - live
if free > 0 and (tonumber(previous) or 0) < limit then
  -- Waiters sleep until a release or the earliest lease end: wake as many as there are
  -- slots now free (at most 1000 at once: a raised limit is an operator's act, not a hot
  -- path, and one call must stay short whatever the limit).
  for _ = 1, math.min(free, limit - (tonumber(previous) or 0), 1000) do
    redis.call('LPUSH', KEYS[3], '1')
  end
  redis.call('LTRIM', KEYS[3], 0, limit - 1)
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
redis.call('SET', KEYS[2], ARGV[1])
return previous
