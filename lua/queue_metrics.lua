--[[
Measure a queue for monitoring: counts by state, its lag and its oldest lease, in bounded time.

KEYS[1] pending (list): entries "id/deliveries" ready for delivery
KEYS[2] inflight (zset): entries "id/delivery" being worked on (score: lease deadline, ms)
KEYS[3] delayed (zset): entries "id/deliveries" waiting until their score (ms)
KEYS[4] dead (zset): dead-lettered ids
KEYS[5] pending1 (list): ready entries of priority 1
KEYS[6] pending2 (list): ready entries of priority 2
KEYS[7] pending3 (list): ready entries of priority 3

Returns: {pending (every priority), in_flight, delayed, dead, lag_ms, inflight_age_ms, overdue_ms, lease_left_ms} (ms of
  server TIME). lag_ms: how long the oldest message that a claim could take now has been
  claimable (0 when none): the head of a pending list since its push, a delayed message since it
  became due, an expired lease since it expired; delayed messages not yet due do not
  count. inflight_age_ms: age since its push of the message whose lease ends first (-1
  when nothing is in flight). overdue_ms: how long ago that lease ended (0 when it has
  not). lease_left_ms: that lease's deadline minus now (negative once it has ended, 0 when
  nothing is in flight); a monitor that knows the queue's lease length L gets the lease's
  age as L - lease_left_ms (the zset stores deadlines, not when a lease began). Every step is O(1) or O(log n), whatever the queue's length.
Flags: read-only
Redis: 6.2
]]
--- @include "queue_counts"
--- @include "time"
local now = server_ms()

local function pushed(entry)
  return tonumber(string.match(entry, '^(%d+)%-'))
end

local lag = 0
local ready = 0
-- One ready list per priority (see queue_levels): each head is the oldest of its list.
for _, key in ipairs({KEYS[1], KEYS[5], KEYS[6], KEYS[7]}) do
  local head = redis.call('LINDEX', key, 0)
  if head then
    ready = ready + redis.call('LLEN', key)
    local at = pushed(head)
    if at then lag = math.max(lag, now - at) end
  end
end
-- Due but not yet moved to pending (the next claim moves it): claimable since its due time.
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)
if due[2] then lag = math.max(lag, now - tonumber(due[2])) end

local age, overdue, left = -1, 0, 0
local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if first[2] then
  local deadline = tonumber(first[2])
  left = deadline - now
  local at = pushed(first[1])
  if at then age = math.max(0, now - at) end
  if deadline <= now then
    -- An expired lease is claimable too (the next claim requeues it).
    overdue = now - deadline
    lag = math.max(lag, overdue)
  end
end

local inflight, delayed, dead = queue_counts(KEYS[2], KEYS[3], KEYS[4])
return {ready, inflight, delayed, dead, math.max(0, lag), age, overdue, left}
