--[[
Store a loader's value if its lease still holds its token (fenced); wake every waiter.

KEYS[1] entry (hash): the cache entry (value and lease fields)
KEYS[2] wake (list): wake-up signals for callers waiting on this entry
KEYS[3] copy (string): the fresh copy a hit reads with a plain GET (rewritten or deleted here)
ARGV[1] token: the loader's lease token
ARGV[2] payload: the serialized value (empty for None)
ARGV[3] none: 1 to store None, else 0
ARGV[4] format: serializer name the payload was written with
ARGV[5] ttl_ms: logical lifetime in milliseconds
ARGV[6] stale_ms: how long past the logical expiry the value is still served stale
ARGV[7] delta_ms: how long the loader took (XFetch's recompute time)
ARGV[8] wake_ms: lifetime of the wake-up signals
ARGV[9] copy_tag: serializer tag that starts the fresh copy
ARGV[10] copy_gap: XFetch bound G: the copy ends delta_ms * G before the logical expiry (0: at it; -1: no copy)

Returns: 1 when stored (also for a re-send after it was stored), 0 when fenced off: the
  lease expired, or set/delete revoked it, so a newer writer owns the entry
Redis: 6.2
]]
local entry = KEYS[1]
local wake = KEYS[2]
local copy = KEYS[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', entry, 'lt', 'lx', 'w', 'wt')
if h[1] ~= ARGV[1] or tonumber(h[2]) <= now then
  if h[4] == ARGV[1] then
    return 1
  end
  return 0
end
if not ({none = 1, string = 1})[redis.call('TYPE', copy).ok] then
  return redis.error_reply('WRONGTYPE KEYS[3] holds the wrong kind of value')
end
local ttl = tonumber(ARGV[5])
local life = ttl + tonumber(ARGV[6])
redis.call('DEL', entry)
redis.call('HSET', entry, 'p', ARGV[2], 'f', ARGV[4], 'd', ARGV[7], 'e', now + ttl,
  's', now + life, 'wt', ARGV[1])
if ARGV[3] == '1' then
  redis.call('HSET', entry, 'n', '1')
end
redis.call('PEXPIRE', entry, life)
-- The copy lives only while every XFetch draw up to G says "no refresh yet", so a hit that
-- finds it needs no script (kinds: '=' safe for any draw, '!' only with early refresh off;
-- '~' / '-' the same for a stored None).
local delta = tonumber(ARGV[7])
local gap = tonumber(ARGV[10])
local copy_end = now + ttl - delta * gap - 1
if gap >= 0 and copy_end > now then
  local safe = gap > 0 or delta == 0
  local kind
  if ARGV[3] == '1' then
    if safe then kind = '~' else kind = '-' end
  else
    if safe then kind = '=' else kind = '!' end
  end
  redis.call('SET', copy, ARGV[9] .. kind .. ARGV[2], 'PXAT', copy_end)
else
  redis.call('DEL', copy)
end
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
  redis.call('PEXPIRE', wake, ARGV[8])
end
return 1
