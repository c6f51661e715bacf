--[[
Count the live permits of a semaphore.

KEYS[1] holders (zset): permit id -> lease deadline (server time, ms)

Returns: the number of permits whose lease has not ended
Flags: read-only
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
