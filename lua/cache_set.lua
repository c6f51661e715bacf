--[[
Store a value unconditionally, revoking any fill lease (fencing off its loader); wake all.

KEYS[1] entry (hash): the cache entry (value and lease fields)
KEYS[2] wake (list): wake-up signals for callers waiting on this entry
KEYS[3] copy (string): the fresh copy a hit reads with a plain GET (rewritten or deleted here)
ARGV[1] payload: the serialized value (empty for None)
ARGV[2] none: 1 to store None, else 0
ARGV[3] format: serializer name the payload was written with
ARGV[4] ttl_ms: logical lifetime in milliseconds
ARGV[5] stale_ms: how long past the logical expiry the value is still served stale
ARGV[6] wake_ms: lifetime of the wake-up signals
ARGV[7] copy_tag: serializer tag that starts the fresh copy
ARGV[8] copy: 1 to write the fresh copy, 0 to only delete it

Returns: 1
Redis: 6.2
]]
local entry = KEYS[1]
local wake = KEYS[2]
local copy = KEYS[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local waiters = tonumber(redis.call('HGET', entry, 'w') or '0')
if not ({none = 1, string = 1})[redis.call('TYPE', copy).ok] then
  return redis.error_reply('WRONGTYPE KEYS[3] holds the wrong kind of value')
end
local ttl = tonumber(ARGV[4])
local life = ttl + tonumber(ARGV[5])
redis.call('DEL', entry)
redis.call('HSET', entry, 'p', ARGV[1], 'f', ARGV[3], 'd', '0', 'e', now + ttl,
  's', now + life)
if ARGV[2] == '1' then
  redis.call('HSET', entry, 'n', '1')
end
redis.call('PEXPIRE', entry, life)
-- no recompute time: the copy may live until the logical expiry for every XFetch draw
if ARGV[8] == '1' and ttl > 1 then
  local kind = '='
  if ARGV[2] == '1' then kind = '~' end
  redis.call('SET', copy, ARGV[7] .. kind .. ARGV[1], 'PXAT', now + ttl - 1)
else
  redis.call('DEL', copy)
end
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
  redis.call('PEXPIRE', wake, ARGV[6])
end
return 1
