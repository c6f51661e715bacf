--[[
Describe a cache entry for operators: value state, timings and lease, without changing it.

KEYS[1] entry (hash): the cache entry (value and lease fields)

Returns: {exists, payload, none, format, ms_to_expiry, ms_to_stale_end, delta_ms,
  lease_ms_left, waiters}; exists is 0 when there is no value (fresh or stale); times are
  milliseconds from now (negative when past), -1 where not applicable
Flags: read-only
Redis: 6.2
]]
--- @include "time"
local entry = KEYS[1]
local now = server_ms()
local h = redis.call('HMGET', entry, 'p', 'n', 'f', 'e', 's', 'd', 'lt', 'lx', 'w')
local exists = 0
if h[1] and tonumber(h[5]) > now then
  exists = 1
end
local none = 0
if h[2] then none = 1 end
local lease = -1
if h[7] and tonumber(h[8]) > now then
  lease = tonumber(h[8]) - now
end
local function left(v)
  if v then return tonumber(v) - now end
  return -1
end
return {exists, h[1] or '', none, h[3] or '', left(h[4]), left(h[5]), tonumber(h[6] or '-1'),
  lease, tonumber(h[9] or '0')}
