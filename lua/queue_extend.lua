--[[
Extend the lease of a delivery that is still current (a heartbeat for long work).

KEYS[1] inflight (zset): entries "id/delivery" being worked on (score: lease deadline, ms)
ARGV[1] receipt: "id/delivery" of the delivery
ARGV[2] lease_ms: the new lease, in milliseconds from now

Returns: 1 when extended, 0 when the delivery is no longer current (acked, given back,
  requeued after its lease expired, or redelivered)
Redis: 6.2
]]
--- @include "time"
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local now = server_ms()
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
return 1
