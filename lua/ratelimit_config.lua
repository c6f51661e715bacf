--[[
Read a rate limiter's stored configuration.

KEYS[1] config (string): the stored configuration "<interval_us> <burst>"

Returns: the stored configuration, or nil when none is stored
Flags: read-only
]]
return redis.call('GET', KEYS[1])
