--[[
Test script: read a counter.

KEYS[1] counter (string): the counter

Returns: its value as a string, or nil
Flags: read-only
]]
return redis.call('GET', KEYS[1])
