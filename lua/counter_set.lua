--[[
Overwrite a bounded counter's value (the caller checked it against the bounds).

KEYS[1] counter (string): the value, a decimal integer
ARGV[1] value (int): the new value
ARGV[2] ttl_ms (int >= 0, ms): lifetime if this call creates the counter, '0' for none; an existing counter keeps its expiry

Returns: 1
]]
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'none' then
  if ARGV[2] ~= '0' then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  else
    redis.call('SET', KEYS[1], ARGV[1])
  end
elseif kind == 'string' then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
else
  -- SET would silently replace a key of another type: refuse like any other command.
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
return 1
