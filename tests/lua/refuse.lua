--[[
Test script: always refuse, naming its key.

KEYS[1] thing (string): the key named in the error

Returns: never; an error reply "BADTHING KEYS[1] ..."
]]
return redis.error_reply('BADTHING KEYS[1] is not acceptable')
