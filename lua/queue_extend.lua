--[[
Extend the lease of a delivery that is still current (a heartbeat for long work).

KEYS[1] inflight (zset): ids being worked on (score: lease deadline, ms of server TIME)
KEYS[2] deliveries (hash): id -> number of deliveries so far
ARGV[1] id: the message id
ARGV[2] delivery: the delivery number of the receipt
ARGV[3] lease_ms: the new lease, in milliseconds from now

Returns: 1 when extended, 0 when the delivery is no longer current (acked, given back,
  requeued after its lease expired, or redelivered)
Redis: 6.2
]]
local inflight, deliveries = KEYS[1], KEYS[2]
local id = ARGV[1]
if not redis.call('ZSCORE', inflight, id) then return 0 end
if redis.call('HGET', deliveries, id) ~= ARGV[2] then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', inflight, 'XX', now + tonumber(ARGV[3]), id)
return 1
