--[[
Test script: append every ARGV to a list.

KEYS[1] log (list): the list
ARGV[1...] items: one or more items

Returns: the list's length
]]
for i = 1, #ARGV do
  redis.call('RPUSH', KEYS[1], ARGV[i])
end
return redis.call('LLEN', KEYS[1])
