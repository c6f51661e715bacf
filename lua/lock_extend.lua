--[[
Reset the lease of the lock to ARGV[2] if ARGV[1] still holds it; never revives an expired lock.

KEYS[1] lock (string): the lock; holds "<token>:<fence>" of the current holder
ARGV[1] token (string): token of the acquisition to extend
ARGV[2] ttl_ms (int > 0, ms): the new remaining lease in milliseconds

Returns: 1 extended (a re-send resets the lease again, from its own arrival), 0 not held by ARGV[1]
Redis: 6.2
]]
local mine = ARGV[1] .. ':'
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, #mine) == mine then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
