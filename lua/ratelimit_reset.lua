--[[
Forget a rate limiter's state: it is full again.

KEYS[1] state (string): "<base_us> <backlog>" of the limiter

Returns: 1 if there was a state to delete, else 0
]]
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'string' and kind ~= 'none' then
  -- DEL would silently delete a key of another type: refuse like any other command.
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
return redis.call('DEL', KEYS[1])
