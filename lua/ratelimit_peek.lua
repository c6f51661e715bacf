--[[
Answer exactly what a hit of cost units of a GCRA rate limiter would get now, spending nothing.

KEYS[1] state (string): "<base_us> <backlog>": the backlog (in emission intervals) as of server time base_us
KEYS[2] config (string): the stored configuration "<interval_us> <burst>" (read only)
ARGV[1] interval_us (number > 0, us): the emission interval period/rate in microseconds (a decimal, may be fractional); must match the stored one
ARGV[2] burst (int > 0): how many units may be spent at once from a full limiter; must match the stored one
ARGV[3] cost (int > 0): the units the hit would spend (1 <= cost <= burst)

Returns: "allowed remaining retry_after_us reset_after_us" (allowed 1/0; four integers in
  one string), exactly what ratelimit_hit would answer (CONFIGMISMATCH included)
Flags: read-only
]]
--- @include "gcra"
-- The arithmetic of ratelimit_hit (the gcra include), without the SETs.
local interval, burst = gcra_config(KEYS[2], ARGV[1], ARGV[2])
if not interval then
  return burst
end
local _, _, _, reply = gcra(KEYS[1], interval, burst, ARGV[3])
return reply
