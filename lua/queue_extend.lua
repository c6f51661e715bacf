--[[
Extend the leases of deliveries that are still current (a heartbeat for long work).

KEYS[1] inflight (zset): entries "id/delivery" being worked on (score: lease deadline, ms)
ARGV[1] receipts (receipts): "id/delivery" of the delivery, or several separated by single spaces
ARGV[2] lease_ms (int > 0, ms): the new lease, in milliseconds from now

Returns: for one receipt, 1 when extended, 0 when the delivery is no longer current (acked,
  given back, requeued after its lease expired, or redelivered); for several, a string of
  one "1" or "0" per receipt, in order (a worker's heartbeat renews all its messages at once)
Redis: 6.2
]]
--- @include "time"
local receipts = ARGV[1]
if not string.find(receipts, ' ', 1, true) then
  if not redis.call('ZSCORE', KEYS[1], receipts) then return 0 end
  redis.call('ZADD', KEYS[1], 'XX', server_ms() + tonumber(ARGV[2]), receipts)
  return 1
end
local deadline = server_ms() + tonumber(ARGV[2])
local list = {}
for r in string.gmatch(receipts, '%S+') do list[#list + 1] = r end
local scores = redis.call('ZMSCORE', KEYS[1], unpack(list))
local out, z = {}, {}
for i = 1, #list do
  if scores[i] then
    out[i] = '1'
    z[#z + 1] = deadline
    z[#z + 1] = list[i]
  else
    out[i] = '0'
  end
end
if #z > 0 then redis.call('ZADD', KEYS[1], 'XX', unpack(z)) end
return table.concat(out)
