--[[
Read a semaphore's stored configuration.

KEYS[1] config (string): the stored configuration "<limit>"

Returns: the stored configuration, or nil when none is stored
Flags: read-only
]]
return redis.call('GET', KEYS[1])
