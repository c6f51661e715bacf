--[[
Give a semaphore permit back and wake one waiter.

KEYS[1] holders (zset): permit id -> lease deadline (server time, ms)
KEYS[2] signal (list): wake-up tokens that waiters BLPOP
ARGV[1] permit (string): the permit id
ARGV[2] limit (int > 0): the semaphore's limit (at most this many tokens are kept)
ARGV[3] signal_ttl_ms (int > 0, ms): lifetime of unconsumed wake-up tokens

Returns: 1 if the permit was held and is now released, 0 if it was already released or its lease had ended
]]
--- @include "time"
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then
  return 0
end
local now = server_ms()
-- The LPUSH is the first write: a signal key of the wrong type fails the call before the
-- permit is removed, so an error never leaves a half-done release.
redis.call('LPUSH', KEYS[2], '1')
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('ZREM', KEYS[1], ARGV[1])
if tonumber(score) > now then
  return 1
end
return 0
