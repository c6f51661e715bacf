--[[
Store a loader's value if its lease still holds its token (fenced); wake every waiter.

KEYS[1] entry (hash): the cache entry (value and lease fields)
KEYS[2] wake (list): wake-up signals for callers waiting on this entry
KEYS[3] copy (string): the fresh copy a hit reads with a plain GET (rewritten or deleted here)
ARGV[1] token (string): the loader's lease token
ARGV[2] payload (string): the serialized value (empty for None)
ARGV[3] none (0|1): 1 to store None, else 0
ARGV[4] format (string): serializer name the payload was written with
ARGV[5] ttl_ms (int > 0, ms): logical lifetime in milliseconds
ARGV[6] stale_ms (int >= 0, ms): how long past the logical expiry the value is still served stale
ARGV[7] delta_ms (int >= 0, ms): how long the loader took (XFetch's recompute time)
ARGV[8] wake_ms (int > 0, ms): lifetime of the wake-up signals
ARGV[9] copy_tag (string): serializer tag that starts the fresh copy
ARGV[10] copy_gap (integer): XFetch bound G: the copy ends delta_ms * G before the logical expiry (0: at it; -1: no copy)

Returns: 1 when stored (also for a re-send after it was stored), 0 when fenced off: the
  lease expired, or set/delete revoked it, so a newer writer owns the entry
Redis: 6.2
]]
--- @include "cache_tail"
--- @include "time"
local entry = KEYS[1]
local wake = KEYS[2]
local copy = KEYS[3]
local now = server_ms()
local h = redis.call('HMGET', entry, 'lt', 'lx', 'w', 'wt')
if h[1] ~= ARGV[1] or tonumber(h[2]) <= now then
  if h[4] == ARGV[1] then
    return 1
  end
  return 0
end
if not copy_type_ok(copy) then
  return redis.error_reply('WRONGTYPE KEYS[3] holds the wrong kind of value')
end
local ttl = tonumber(ARGV[5])
store_value(entry, ARGV[2], ARGV[3] == '1', ARGV[4], ARGV[7], now, ttl, tonumber(ARGV[6]),
            'wt', ARGV[1])
-- The copy lives only while every XFetch draw up to G says "no refresh yet", so a hit that
-- finds it needs no script (see write_copy).
local delta = tonumber(ARGV[7])
local gap = tonumber(ARGV[10])
local copy_end = now + ttl - delta * gap - 1
if gap >= 0 and copy_end > now then
  write_copy(copy, ARGV[9], ARGV[2], ARGV[3] == '1', gap > 0 or delta == 0, copy_end)
else
  redis.call('DEL', copy)
end
local waiters = tonumber(h[3] or '0')
wake_waiters(wake, waiters, ARGV[8])
return 1
