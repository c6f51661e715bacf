--[[
Delete an entry's value, fresh copy and fill lease (fencing off its loader); wake all waiters.

KEYS[1] entry (hash): the cache entry (value and lease fields)
KEYS[2] wake (list): wake-up signals for callers waiting on this entry
KEYS[3] copy (string): the fresh copy a hit reads with a plain GET
ARGV[1] wake_ms (int > 0, ms): lifetime of the wake-up signals

Returns: 1 when a value (fresh or stale) was removed, else 0 (a re-send returns 0)
Redis: 6.2
]]
--- @include "cache_tail"
--- @include "time"
local entry = KEYS[1]
local wake = KEYS[2]
local copy = KEYS[3]
local now = server_ms()
local h = redis.call('HMGET', entry, 'p', 's', 'w')
local had = 0
if h[1] and tonumber(h[2]) > now then
  had = 1
end
if not copy_type_ok(copy) then
  return redis.error_reply('WRONGTYPE KEYS[3] holds the wrong kind of value')
end
redis.call('DEL', entry, copy)
local waiters = tonumber(h[3] or '0')
wake_waiters(wake, waiters, ARGV[1])
return had
