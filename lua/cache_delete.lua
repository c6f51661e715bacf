--[[
Delete an entry's value, fresh copy and fill lease (fencing off its loader); wake all waiters.

KEYS[1] entry (hash): the cache entry (value and lease fields)
KEYS[2] wake (list): wake-up signals for callers waiting on this entry
KEYS[3] copy (string): the fresh copy a hit reads with a plain GET
ARGV[1] wake_ms: lifetime of the wake-up signals

Returns: 1 when a value (fresh or stale) was removed, else 0 (a re-send returns 0)
Redis: 6.2
]]
local entry = KEYS[1]
local wake = KEYS[2]
local copy = KEYS[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', entry, 'p', 's', 'w')
local had = 0
if h[1] and tonumber(h[2]) > now then
  had = 1
end
if not ({none = 1, string = 1})[redis.call('TYPE', copy).ok] then
  return redis.error_reply('WRONGTYPE KEYS[3] holds the wrong kind of value')
end
redis.call('DEL', entry, copy)
local waiters = tonumber(h[3] or '0')
local missing = waiters - redis.call('LLEN', wake)
while missing > 0 do
  local batch = {}
  for i = 1, math.min(missing, 1000) do
    batch[i] = '1'
  end
  redis.call('RPUSH', wake, unpack(batch))
  missing = missing - #batch
end
if waiters > 0 then
  redis.call('PEXPIRE', wake, ARGV[1])
end
return had
