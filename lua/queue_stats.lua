--[[
Count a queue's messages by state and measure how long the next ready one has waited.

KEYS[1] pending (list): ids ready for delivery (priority 0)
KEYS[2] inflight (zset): ids being worked on
KEYS[3] delayed (zset): ids waiting for their due time
KEYS[4] dead (zset): dead-lettered ids
KEYS[5] pending1 (list): ids of priority 1 ready for delivery
KEYS[6] pending2 (list): ids of priority 2 ready for delivery
KEYS[7] pending3 (list): ids of priority 3 ready for delivery

Returns: {pending, in_flight, delayed, dead, oldest_pending_age_ms, pending_by_priority};
  pending counts every priority, pending_by_priority is "n0 n1 n2 n3"; the age is measured
  from the push of the oldest message at the front of a ready list (-1: nothing pending)
Flags: read-only
Redis: 6.2
]]
--- @include "queue_counts"
--- @include "time"
local now = server_ms()
local age = -1
local lists = {KEYS[1], KEYS[5], KEYS[6], KEYS[7]}
local counts, total = {}, 0
for i = 1, 4 do
  local n = redis.call('LLEN', lists[i])
  counts[i] = n
  total = total + n
  if n > 0 then
    local pushed = tonumber(string.match(redis.call('LINDEX', lists[i], 0), '^(%d+)%-'))
    if pushed then age = math.max(age, now - pushed, 0) end
  end
end
local inflight, delayed, dead = queue_counts(KEYS[2], KEYS[3], KEYS[4])
return {total, inflight, delayed, dead, age, table.concat(counts, ' ')}
