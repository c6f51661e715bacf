--[[
Spend cost units of a GCRA rate limiter if the burst allows it now.

KEYS[1] state (string): "<base_us> <backlog>": the backlog (in emission intervals) as of server time base_us
KEYS[2] config (string): the stored configuration "<interval_us> <burst>"; the first call stores its ARGV[1] and ARGV[2] here
ARGV[1] interval_us (number > 0, us): the emission interval period/rate in microseconds (a decimal, may be fractional); must match the stored one
ARGV[2] burst (int > 0): how many units may be spent at once from a full limiter; must match the stored one
ARGV[3] cost (int > 0): the units this hit spends (1 <= cost <= burst)

Returns: "allowed remaining retry_after_us reset_after_us": four integers in one string
  (allowed 1/0; one bulk string is cheaper for clients to read than an array). A
  configuration other than the stored one fails with CONFIGMISMATCH and spends nothing.
]]
--- @include "gcra"
local interval, burst, store = gcra_config(KEYS[2], ARGV[1], ARGV[2])
if not interval then
  return burst
end
local now, after, reset_us, reply = gcra(KEYS[1], interval, burst, ARGV[3])
if now then
  redis.call('SET', KEYS[1], string.format('%d %.17g', now, after),
             'PX', math.floor(reset_us / 1000) + 1)
end
if store then
  -- Stored once, for good: the state comes and goes (it expires when the limiter is full
  -- again), the configuration stays (reconfigure changes it).
  redis.call('SET', KEYS[2], ARGV[1] .. ' ' .. ARGV[2])
end
return reply
