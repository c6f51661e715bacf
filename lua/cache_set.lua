--[[
Store a value unconditionally, revoking any fill lease (fencing off its loader); wake all.

KEYS[1] entry (hash): the cache entry (value and lease fields)
KEYS[2] wake (list): wake-up signals for callers waiting on this entry
KEYS[3] copy (string): the fresh copy a hit reads with a plain GET (rewritten or deleted here)
ARGV[1] payload (string): the serialized value (empty for None)
ARGV[2] none (0|1): 1 to store None, else 0
ARGV[3] format (string): serializer name the payload was written with
ARGV[4] ttl_ms (int > 0, ms): logical lifetime in milliseconds
ARGV[5] stale_ms (int >= 0, ms): how long past the logical expiry the value is still served stale
ARGV[6] wake_ms (int > 0, ms): lifetime of the wake-up signals
ARGV[7] copy_tag (string): serializer tag that starts the fresh copy
ARGV[8] copy (0|1): 1 to write the fresh copy, 0 to only delete it

Returns: 1
Redis: 6.2
]]
--- @include "cache_tail"
--- @include "time"
local entry = KEYS[1]
local wake = KEYS[2]
local copy = KEYS[3]
local now = server_ms()
local waiters = tonumber(redis.call('HGET', entry, 'w') or '0')
if not copy_type_ok(copy) then
  return redis.error_reply('WRONGTYPE KEYS[3] holds the wrong kind of value')
end
local ttl = tonumber(ARGV[4])
store_value(entry, ARGV[1], ARGV[2] == '1', ARGV[3], '0', now, ttl, tonumber(ARGV[5]))
-- no recompute time: the copy may live until the logical expiry for every XFetch draw
if ARGV[8] == '1' and ttl > 1 then
  write_copy(copy, ARGV[7], ARGV[1], ARGV[2] == '1', true, now + ttl - 1)
else
  redis.call('DEL', copy)
end
wake_waiters(wake, waiters, ARGV[6])
return 1
