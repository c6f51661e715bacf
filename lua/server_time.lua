--[[
Read the server's clock, the one time source every primitive uses.

Returns: {seconds, microseconds} as integers, from TIME
Flags: read-only
Redis: 6.2
]]
local t = redis.call('TIME')
return {tonumber(t[1]), tonumber(t[2])}
