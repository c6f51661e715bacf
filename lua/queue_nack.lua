--[[
Give a delivery back: to the front of pending, to the delayed set, or to the dead letters.

KEYS[1] pending (list): entries "id/deliveries" ready; a given-back entry goes to the front
KEYS[2] inflight (zset): entries "id/delivery" being worked on (score: lease deadline, ms)
KEYS[3] delayed (zset): entries "id/deliveries" waiting until their score (ms)
KEYS[4] dead (zset): dead-lettered ids (score: when they died, ms of server TIME)
KEYS[5] deadinfo (hash): dead id -> "deliveries reason", then "\n" and the failure if any
KEYS[6] dedup (hash): dedup key -> id
KEYS[7] dedupof (hash): id -> dedup key
KEYS[8] signal (list): wake-up tokens for blocked consumers (bounded length)
KEYS[9] pending1 (list): ready entries of priority 1
KEYS[10] pending2 (list): ready entries of priority 2
KEYS[11] pending3 (list): ready entries of priority 3
ARGV[1] receipt (string): "id/delivery" of the delivery to give back
ARGV[2] delay_ms (int >= 0, ms): 0 = ready again now, else milliseconds until it is ready
ARGV[3] max_deliveries (int > 0): a message delivered this often goes to the dead letters instead
ARGV[4] counted (0|1): "1" = an attempt; "0" = not (a stopping worker gives it back: never buried)
ARGV[5] failure (string): text recorded with the dead letter if this nack buries it ("" = none)

Returns: 0 when the delivery is no longer current (nothing changed), 1 when the message is
  ready again, 2 when it is delayed, 3 when it was dead-lettered
Redis: 6.2
]]
--- @include "queue_wake"
--- @include "time"
--- @include "queue_levels"
local pending, inflight, delayed, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local deadinfo, dedup, dedupof, signal = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local receipt = ARGV[1]
local delay = tonumber(ARGV[2])

if redis.call('ZREM', inflight, receipt) == 0 then return 0 end
local id, d = string.match(receipt, '^([^/]+)/(%d+)$')

local now = server_ms()

local entry = receipt
if ARGV[4] == '0' then
  -- Not an attempt: the next claim makes it delivery d again.
  entry = id .. '/' .. (tonumber(d) - 1)
elseif tonumber(d) >= tonumber(ARGV[3]) then
  redis.call('ZADD', dead, now, id)
  local info = d .. ' nacked'
  if ARGV[5] ~= '' then info = info .. '\n' .. ARGV[5] end
  redis.call('HSET', deadinfo, id, info)
  forget_dedup_of(dedup, dedupof, id)
  return 3
end
if delay > 0 then
  redis.call('ZADD', delayed, now + delay, entry)
  return 2
end
redis.call('LPUSH', ready_list({pending, KEYS[9], KEYS[10], KEYS[11]}, id), entry)
wake(signal, 1)
return 1
