--[[
Count the live permits of a semaphore.

KEYS[1] holders (zset): permit id -> lease deadline (server time, ms)

Returns: the number of permits whose lease has not ended
Flags: read-only
]]
--- @include "time"
local now = server_ms()
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
