--[[
List the live permits of a semaphore with their remaining leases.

KEYS[1] holders (zset): permit id -> lease deadline (server time, ms)

Returns: flat array {permit, remaining_ms, permit, remaining_ms, ...}, earliest end first
Flags: read-only
]]
--- @include "time"
local now = server_ms()
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')
local out = {}
for i = 1, #live, 2 do
  out[#out + 1] = live[i]
  out[#out + 1] = tonumber(live[i + 1]) - now
end
return out
