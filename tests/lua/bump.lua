--[[
Test script: add ARGV[1] to a counter.

KEYS[1] counter (string): the counter
ARGV[1] by: the increment

Returns: the new value
]]
return redis.call('INCRBY', KEYS[1], ARGV[1])
