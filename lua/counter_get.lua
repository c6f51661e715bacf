--[[
Read a bounded counter.

KEYS[1] counter (string): the value, a decimal integer within +-(2^53-1)
ARGV[1] initial (integer): the value of an absent counter

Returns: the value (ARGV[1] when the key is absent)
Flags: read-only
]]
local LIMIT = 9007199254740991
local raw = redis.call('GET', KEYS[1])
if not raw then
  return tonumber(ARGV[1])
end
local cur = (#raw <= 17 and string.match(raw, '^%-?%d+$')) and tonumber(raw) or nil
if cur == nil or cur > LIMIT or cur < -LIMIT then
  return redis.error_reply('NOTINT KEYS[1] does not hold an integer within +-(2^53-1)')
end
return cur
