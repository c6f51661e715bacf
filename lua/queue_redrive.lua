--[[
Move dead letters back to the tail of pending as new messages (new ids, no deliveries yet).

KEYS[1] dead (zset): dead-lettered ids (score: when they died, ms of server TIME)
KEYS[2] payload (hash): id -> payload bytes
KEYS[3] deadinfo (hash): dead id -> "deliveries reason"
KEYS[4] pending (list): entries "id/deliveries" ready for delivery
KEYS[5] signal (list): wake-up tokens for blocked consumers (bounded length)
KEYS[6] seq (string): id counter
ARGV[1] limit: with ids "*": how many of the oldest dead letters to move
ARGV[2...] ids: the dead ids to move, or the single value "*" for the oldest ones

Returns: how many messages were moved (ids that are not dead letters are skipped)
Redis: 6.2
]]
--- @include "queue_wake"
--- @include "time"
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
      local id = string.format('%d-%d', now, redis.call('INCR', seq))
      redis.call('HSET', payload, id, body)
      redis.call('RPUSH', pending, id .. '/0')
      moved = moved + 1
    end
  end
end
if moved > 0 then
  wake(signal, moved)
end
return moved
