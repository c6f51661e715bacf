--[[
Answer exactly what a hit of cost units of a GCRA rate limiter would get now, spending nothing.

KEYS[1] state (string): "<base_us> <backlog>": the backlog (in emission intervals) as of server time base_us
ARGV[1] interval_us: the emission interval period/rate in microseconds (a decimal, may be fractional)
ARGV[2] burst: how many units may be spent at once from a full limiter
ARGV[3] cost: the units the hit would spend (1 <= cost <= burst)

Returns: "allowed remaining retry_after_us reset_after_us" (allowed 1/0; four integers in
  one string), exactly what ratelimit_hit would answer
Flags: read-only
]]
-- Keep in step with ratelimit_hit.lua: the same arithmetic without the SET.
local EPS = 1e-9
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])

local backlog = 0
local raw = redis.call('GET', KEYS[1])
if raw then
  local base, units = string.match(raw, '^(%d+) (%S+)$')
  units = tonumber(units)
  if base == nil or units == nil then
    return redis.error_reply('BADSTATE KEYS[1] does not hold a rate limiter state')
  end
  backlog = math.max(0, units - (now - tonumber(base)) / interval)
end

local after = backlog + cost
if after > burst + EPS then
  return string.format('0 %d %d %d', math.max(0, math.floor(burst - backlog + EPS)),
                       math.ceil((after - burst) * interval), math.ceil(backlog * interval))
end
return string.format('1 %d 0 %d', math.max(0, math.floor(burst - after + EPS)),
                     math.ceil(after * interval))
