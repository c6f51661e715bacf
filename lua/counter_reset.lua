--[[
Delete a bounded counter, so that it reads as its initial value and its next change starts a new window.

KEYS[1] counter (string): the value

Returns: 1 if a counter was deleted, else 0
]]
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'string' and kind ~= 'none' then
  -- DEL would silently delete a key of another type: refuse like any other command.
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
return redis.call('DEL', KEYS[1])
