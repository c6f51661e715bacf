--[[
Replace a bounded counter's stored configuration (the explicit way to change its bounds or mode).

KEYS[1] counter (string): the value, a decimal integer within +-(2^53-1)
KEYS[2] config (string): the stored configuration "<min> <max> <mode>", replaced by ARGV[2]
ARGV[1] fit (0|1): what to do with a value outside the new bounds: 0 refuse (nothing changes), 1 move it to the nearest new bound
ARGV[2] config (packed): the new configuration "<min> <max> <mode>" (as for counter_add)

Returns: {previous configuration ('' when none was stored), the value after ('' when the
  counter is absent), 1 if the value was moved into the new bounds else 0}. A value
  outside the new bounds with ARGV[1] 0 fails with OUTOFBOUNDS and changes nothing.
]]
--- @include "config"
--- @include "counter_config"
--- @include "counter_store"
local lo, hi = counter_bounds(ARGV[2])
if lo == nil then
  return pa_error(COUNTER_CONFIG, ARGV[2])
end
local previous = redis.call('GET', KEYS[2]) or ''
local raw = redis.call('GET', KEYS[1])
local moved = 0
if raw then
  local cur = tonumber(raw)
  if cur == nil or cur % 1 ~= 0 or math.abs(cur) > 9007199254740991 then
    return redis.error_reply('NOTINT KEYS[1] does not hold an integer within +-(2^53-1)')
  end
  if cur < lo or cur > hi then
    if ARGV[1] == '0' then
      return redis.error_reply('OUTOFBOUNDS KEYS[1] holds ' .. raw ..
                               ', outside the new bounds [' .. string.format('%d', lo) ..
                               ', ' .. string.format('%d', hi) .. ']: nothing changed ' ..
                               '(fit 1 moves it to the nearest bound)')
    end
    raw = string.format('%d', math.min(math.max(cur, lo), hi))
    redis.call('SET', KEYS[1], raw, 'KEEPTTL')
    moved = 1
  end
  -- The configuration lives as long as the counter.
  store_counter_config(redis.call('PTTL', KEYS[1]))
else
  redis.call('SET', KEYS[2], ARGV[2], 'KEEPTTL')
end
return {previous, raw or '', moved}
