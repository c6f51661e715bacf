--[[
Push messages onto a reliable queue (ready now, or delayed), optionally deduplicated.

KEYS[1] pending (list): entries "id/deliveries" ready for delivery, oldest first
KEYS[2] delayed (zset): entries "id/deliveries" waiting until their score (ms, server TIME)
KEYS[3] payload (hash): id -> payload bytes
KEYS[4] dedup (hash): dedup key -> id of the queued message that carries it
KEYS[5] dedupof (hash): id -> its dedup key
KEYS[6] signal (list): wake-up tokens for blocked consumers (bounded length)
KEYS[7] seq (string): id counter; never reset, so ids are never reused
KEYS[8] pending1 (list): ready entries of priority 1 (as pending, claimed before it)
KEYS[9] pending2 (list): ready entries of priority 2
KEYS[10] pending3 (list): ready entries of priority 3 (the highest)
ARGV[1] delay_ms (int >= 0, ms): 0 = ready now, else milliseconds until the messages become ready
ARGV[2] mode (0..3): "1" when the items are (dedup key, payload) pairs, "0" when they are payloads; "3" and "2" the same with every payload starting with its producer's trace context (the ids then carry TRACE_MARK)
ARGV[3] priority (0..3): 0 (default, lowest) to 3 (highest); ids of priority k > 0 end in "p<k>"
ARGV[4...] items (string): payloads, or dedup key and payload pairs (one or more)

Returns: the ids separated by single spaces, one per message in order (one string keeps
  the reply cheap to parse); a deduplicated message gives the id of the message already
  queued with that dedup key, also when that message was made earlier in the same call
Redis: 6.2
]]
--- @include "queue_wake"
--- @include "time"
local pending, delayed, payload = KEYS[1], KEYS[2], KEYS[3]
local dedup, dedupof, signal, seq = KEYS[4], KEYS[5], KEYS[6], KEYS[7]

local now = server_ms()
local delay = tonumber(ARGV[1])
local mode = ARGV[2]
local paired = mode == '1' or mode == '3'
-- A message of priority k > 0 waits in KEYS[7 + k] when ready; its id ends in
-- PRIORITY_MARK .. k (before DEDUP_MARK), so every requeue (nack, expired lease, due delay,
-- redrive) finds its list again from the id alone.
local prio = ARGV[3]
if paired and #ARGV % 2 == 0 then
  return pa_error('with ARGV[2] mode 1 or 3, ARGV[4...] items must be (dedup key, ' ..
                  'payload) pairs, got an odd number of values')
end
local ready = prio == '0' and pending or ({KEYS[8], KEYS[9], KEYS[10]})[tonumber(prio)]
local mark = prio == '0' and '' or (PRIORITY_MARK .. prio)
-- Payloads that start with a trace context: their ids say so (TRACE_MARK before the
-- priority's mark and any DEDUP_MARK), and consumers split the context off.
if mode == '2' or mode == '3' then mark = TRACE_MARK .. mark end

-- One message, ready now, no dedup key: the producer's common case, without the tables.
if #ARGV == 4 and mode == '0' and delay == 0 then
  local id = string.format('%d-%d', now, redis.call('INCR', seq)) .. mark
  redis.call('HSET', payload, id, ARGV[4])
  redis.call('RPUSH', ready, id .. '/0')
  wake(signal, 1)
  return id
end

local step = paired and 2 or 1

-- One INCRBY reserves the sequence numbers of the whole batch.
local count = (#ARGV - 3) / step
local nextseq = redis.call('INCRBY', seq, count) - count + 1

local ids, entries, fields = {}, {}, {}
-- Dedup keys given earlier in this call -> the id made for them: their payloads are only
-- written after the loop, so the HEXISTS check below would take those ids for stale ones.
local made = {}
for i = 4, #ARGV, step do
  local existing = false
  local key
  if paired then
    key = ARGV[i]
    existing = made[key]
    if not existing then
      existing = redis.call('HGET', dedup, key)
      -- A mapping whose message is gone (acked, dead-lettered, purged) is stale.
      if existing and redis.call('HEXISTS', payload, existing) == 0 then existing = false end
    end
  end
  if existing then
    ids[#ids + 1] = existing
  else
    -- Ids of deduplicated messages end in DEDUP_MARK: acks skip the dedup lookup for the rest.
    local id = string.format('%d-%d', now, nextseq) .. mark
    if paired then id = id .. DEDUP_MARK end
    nextseq = nextseq + 1
    ids[#ids + 1] = id
    entries[#entries + 1] = id .. '/0'
    fields[#fields + 1] = id
    fields[#fields + 1] = ARGV[i + step - 1]
    if paired then
      made[key] = id
      redis.call('HSET', dedup, key, id)
      redis.call('HSET', dedupof, id, key)
    end
  end
end

if #entries > 0 then
  redis.call('HSET', payload, unpack(fields))
  if delay > 0 then
    local z = {}
    for i = 1, #entries do
      z[#z + 1] = now + delay
      z[#z + 1] = entries[i]
    end
    redis.call('ZADD', delayed, unpack(z))
  else
    redis.call('RPUSH', ready, unpack(entries))
    wake(signal, #entries)
  end
end
return table.concat(ids, ' ')
