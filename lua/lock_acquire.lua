--[[
Take the lock if it is free and issue the next fencing token; a re-sent acquire whose token already holds the lock counts as acquired.

KEYS[1] lock (string): the lock; holds "<token>:<fence>" of the current holder, with the lease as its expiry
KEYS[2] fences (hash): never expires; fence = last token issued, released = last fence released by its holder, lost = last fence known to have lost its lease
KEYS[3] signal (list): wake-up list that waiters block on (only its type is checked here)
ARGV[1] token (token): random token of this acquisition (no ':')
ARGV[2] ttl_ms (int > 0, ms): lease in milliseconds

Returns: one integer (cheaper for clients to read than an array): the fence (> 0) when
  acquired (also when ARGV[1] already holds it: a re-sent acquire); when another token
  holds it, -1 - pttl_ms (< 0: the holder's lease ends in pttl_ms), or 0 if the key has
  no expiry
Redis: 6.2
]]
local mine = ARGV[1] .. ':'
local held = redis.call('GET', KEYS[1])
if held then
  if string.sub(held, 1, #mine) == mine then
    -- Our own earlier send got through and only its reply was lost: same acquisition.
    return tonumber(string.sub(held, #mine + 1))
  end
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl < 0 then return 0 end
  return -1 - pttl
end
local last = redis.call('HMGET', KEYS[2], 'fence', 'released')
-- Touch every key before writing any, so a key of the wrong type changes nothing. A
-- wake-up left in the list is not dropped: a waiter that takes it just retries once.
redis.call('LLEN', KEYS[3])
if last[1] and last[1] ~= last[2] then
  -- The previous holder never released: its lease ran out, or the lock was broken.
  redis.call('HSET', KEYS[2], 'lost', last[1])
end
local fence = redis.call('HINCRBY', KEYS[2], 'fence', 1)
redis.call('SET', KEYS[1], mine .. string.format('%d', fence), 'PX', ARGV[2])
return fence
