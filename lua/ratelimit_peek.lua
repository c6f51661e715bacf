--[[
Answer exactly what a hit of cost units of a GCRA rate limiter would get now, spending nothing.

KEYS[1] state (string): "<base_us> <backlog>": the backlog (in emission intervals) as of server time base_us
ARGV[1] interval_us (number > 0, us): the emission interval period/rate in microseconds (a decimal, may be fractional)
ARGV[2] burst (int > 0): how many units may be spent at once from a full limiter
ARGV[3] cost (int > 0): the units the hit would spend (1 <= cost <= burst)

Returns: "allowed remaining retry_after_us reset_after_us" (allowed 1/0; four integers in
  one string), exactly what ratelimit_hit would answer
Flags: read-only
]]
--- @include "gcra"
-- The arithmetic of ratelimit_hit (the gcra include), without the SET.
local _, _, _, reply = gcra(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
return reply
