--[[
Overwrite a bounded counter's value, within its stored bounds.

KEYS[1] counter (string): the value, a decimal integer
KEYS[2] config (string): the stored configuration "<min> <max> <mode>"; stored here when there is none
ARGV[1] value (int): the new value, within the stored bounds
ARGV[2] config (packed): the caller's configuration "<min> <max> <mode>" (as for counter_add); must equal the stored one byte for byte
ARGV[3] ttl_ms (int >= 0, ms): lifetime if this call creates the counter, '0' for none; an existing counter keeps its expiry

Returns: 1. A configuration other than the stored one fails with CONFIGMISMATCH, a value
  outside the stored bounds with OUTOFBOUNDS; neither changes anything.
]]
--- @include "config"
--- @include "counter_config"
--- @include "counter_store"
local lo, hi = counter_bounds(ARGV[2])
if lo == nil then
  return pa_error(COUNTER_CONFIG, ARGV[2])
end
local stored = redis.call('GET', KEYS[2])
if stored and stored ~= ARGV[2] then
  return config_mismatch(stored, ARGV[2])
end
local value = tonumber(ARGV[1])
if value < lo or value > hi then
  return redis.error_reply('OUTOFBOUNDS ARGV[1] value ' .. ARGV[1] ..
                           ' lies outside the stored bounds of KEYS[1] [' ..
                           string.format('%d', lo) .. ', ' .. string.format('%d', hi) .. ']')
end
local kind = redis.call('TYPE', KEYS[1]).ok
local pttl = 0
if kind == 'none' then
  if ARGV[3] ~= '0' then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
    pttl = tonumber(ARGV[3])
  else
    redis.call('SET', KEYS[1], ARGV[1])
  end
elseif kind == 'string' then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
  pttl = redis.call('PTTL', KEYS[1])
else
  -- SET would silently replace a key of another type: refuse like any other command.
  return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
end
-- The stored configuration lives as long as the counter.
if not stored or kind == 'none' then
  store_counter_config(pttl)
end
return 1
