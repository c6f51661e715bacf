--[[
Move dead letters back to the tail of their priority's pending list as new messages.

KEYS[1] dead (zset): dead-lettered ids (score: when they died, ms of server TIME)
KEYS[2] payload (hash): id -> payload bytes
KEYS[3] deadinfo (hash): dead id -> "deliveries reason"
KEYS[4] pending (list): entries "id/deliveries" ready for delivery
KEYS[5] signal (list): wake-up tokens for blocked consumers (bounded length)
KEYS[6] seq (string): id counter
KEYS[7] pending1 (list): ready entries of priority 1
KEYS[8] pending2 (list): ready entries of priority 2
KEYS[9] pending3 (list): ready entries of priority 3
ARGV[1] limit (int > 0): with ids "*": how many of the oldest dead letters to move
ARGV[2...] ids (string): the dead ids to move, or the single value "*" for the oldest ones

Returns: how many messages were moved (ids that are not dead letters are skipped); each
  gets a new id with no deliveries yet and keeps its priority
Redis: 6.2
]]
--- @include "queue_wake"
--- @include "time"
--- @include "queue_levels"
local dead, payload, deadinfo, pending, signal, seq =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]

local ids = {}
if ARGV[2] == '*' and #ARGV == 2 then
  ids = redis.call('ZRANGE', dead, 0, tonumber(ARGV[1]) - 1)
else
  for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
end

local now = server_ms()
local moved = 0
for i = 1, #ids do
  local old = ids[i]
  -- A new id makes every receipt of the old deliveries stale for good.
  if redis.call('ZREM', dead, old) == 1 then
    local body = redis.call('HGET', payload, old)
    redis.call('HDEL', payload, old)
    redis.call('HDEL', deadinfo, old)
    if body then
      -- Same priority (its mark, see queue_levels); the dedup key was dropped at death.
      local p = string.match(old, PRIORITY_MARK .. '(%d)')
      local id = string.format('%d-%d', now, redis.call('INCR', seq))
      -- The payload still starts with its trace context: the new id must say so too.
      if string.find(old, TRACE_MARK, 1, true) then id = id .. TRACE_MARK end
      if p then id = id .. PRIORITY_MARK .. p end
      redis.call('HSET', payload, id, body)
      redis.call('RPUSH', ready_list({pending, KEYS[7], KEYS[8], KEYS[9]}, id), id .. '/0')
      moved = moved + 1
    end
  end
end
if moved > 0 then
  wake(signal, moved)
end
return moved
