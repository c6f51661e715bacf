--[[
Spend cost units of a GCRA rate limiter if the burst allows it now.

KEYS[1] state (string): "<base_us> <backlog>": the backlog (in emission intervals) as of server time base_us
ARGV[1] interval_us (number > 0, us): the emission interval period/rate in microseconds (a decimal, may be fractional)
ARGV[2] burst (int > 0): how many units may be spent at once from a full limiter
ARGV[3] cost (int > 0): the units this hit spends (1 <= cost <= burst)

Returns: "allowed remaining retry_after_us reset_after_us": four integers in one string
  (allowed 1/0; one bulk string is cheaper for clients to read than an array)
]]
--- @include "gcra"
local now, after, reset_us, reply = gcra(KEYS[1], ARGV[1], ARGV[2], ARGV[3])
if now then
  redis.call('SET', KEYS[1], string.format('%d %.17g', now, after),
             'PX', math.floor(reset_us / 1000) + 1)
end
return reply
