--[[
Free a fill lease (the loader raised or was cancelled); wake one waiter to take over.

KEYS[1] entry (hash): the cache entry (value and lease fields)
KEYS[2] wake (list): wake-up signals for callers waiting on this entry
ARGV[1] token (string): the loader's lease token
ARGV[2] wake_ms (int > 0, ms): lifetime of the wake-up signal

Returns: 1 when the lease was ours and is now free, 0 when it was not held by the token
  (expired, revoked, or already released: a re-send changes nothing)
Redis: 6.2
]]
--- @include "time"
local entry = KEYS[1]
local wake = KEYS[2]
local now = server_ms()
local h = redis.call('HMGET', entry, 'lt', 'lx', 'w')
if h[1] ~= ARGV[1] or tonumber(h[2]) <= now then
  return 0
end
redis.call('HDEL', entry, 'lt', 'lx')
local waiters = tonumber(h[3] or '0')
if waiters > 0 then
  -- the woken waiter stops counting; the others stay counted for the next fill
  redis.call('HINCRBY', entry, 'w', -1)
  if redis.call('LLEN', wake) == 0 then
    redis.call('RPUSH', wake, '1')
  end
  redis.call('PEXPIRE', wake, ARGV[2])
end
return 1
