--[[
Force-release the lock whoever holds it (an operator's tool) and wake one waiter.

KEYS[1] lock (string): the lock; holds "<token>:<fence>" of the current holder
KEYS[2] signal (list): wake-up list; left holding one wake-up (never more)
ARGV[1] wake_ms (int > 0, ms): how long a wake-up nobody takes stays in the signal list

Returns: {1, holder_fence} when a holder was removed (holder_fence 0 if unknown), {0, 0} when
  the lock was free (a re-send finds it free)
Redis: 6.2
]]
--- @include "lock_wake"
local held = redis.call('GET', KEYS[1])
if not held then
  return {0, 0}
end
local pending = redis.call('LLEN', KEYS[2])
redis.call('DEL', KEYS[1])
wake_one(KEYS[2], pending, ARGV[1])
local sep = string.find(held, ':', 1, true)
local fence = 0
if sep then
  fence = tonumber(string.sub(held, sep + 1)) or 0
end
return {1, fence}
