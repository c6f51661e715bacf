--[[
List dead letters, oldest death first, with their delivery history.

KEYS[1] dead (zset): dead-lettered ids (score: when they died, ms of server TIME)
KEYS[2] payload (hash): id -> payload bytes
KEYS[3] deadinfo (hash): dead id -> "deliveries reason" (expired or nacked), "\n" failure
ARGV[1] offset (int >= 0): how many of the oldest to skip
ARGV[2] limit (int > 0): how many to return at most

Returns: {id1, payload1, info1, died_ms1, id2, ...}; info is "deliveries reason", then a
  newline and the failure recorded by the last nack, if any
Redis: 6.2
]]
local first = tonumber(ARGV[1])
local ids = redis.call('ZRANGE', KEYS[1], first, first + tonumber(ARGV[2]) - 1, 'WITHSCORES')
local out = {}
for i = 1, #ids, 2 do
  local id = ids[i]
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', KEYS[2], id) or ''
  out[#out + 1] = redis.call('HGET', KEYS[3], id) or '0 unknown'
  out[#out + 1] = ids[i + 1]
end
return out
