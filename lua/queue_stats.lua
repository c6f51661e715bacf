--[[
Count a queue's messages by state and measure how long the next ready one has waited.

KEYS[1] pending (list): ids ready for delivery
KEYS[2] inflight (zset): ids being worked on
KEYS[3] delayed (zset): ids waiting for their due time
KEYS[4] dead (zset): dead-lettered ids

Returns: {pending, in_flight, delayed, dead, oldest_pending_age_ms}; the age is measured
  from the push of the message at the front of pending (-1 when nothing is pending)
Flags: read-only
Redis: 6.2
]]
--- @include "time"
local now = server_ms()
local age = -1
local head = redis.call('LINDEX', KEYS[1], 0)
if head then
  local pushed = tonumber(string.match(head, '^(%d+)%-'))
  if pushed then age = math.max(0, now - pushed) end
end
return {
  redis.call('LLEN', KEYS[1]),
  redis.call('ZCARD', KEYS[2]),
  redis.call('ZCARD', KEYS[3]),
  redis.call('ZCARD', KEYS[4]),
  age,
}
