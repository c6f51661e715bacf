--[[
Replace a rate limiter's stored configuration (the explicit way to change its rate or burst).

KEYS[1] state (string): "<base_us> <backlog>": the backlog (in emission intervals) as of server time base_us
KEYS[2] config (string): the stored configuration "<interval_us> <burst>", replaced by ARGV[1] and ARGV[2]
ARGV[1] interval_us (number > 0, us): the new emission interval period/rate in microseconds (a decimal, may be fractional)
ARGV[2] burst (int > 0): the new burst

Returns: the previous configuration ('' when none was stored)
]]
-- The units already spent stay spent: the backlog (in units) is carried over and drains at
-- the new interval from now on, so the new rate holds from this instant (a backlog above
-- the new burst refuses hits until it drained below it). The state key's expiry is set for
-- the new interval (it would otherwise end when the old one said, forgetting units that
-- the new, slower rate has not refilled yet).
local previous = redis.call('GET', KEYS[2]) or ''
local raw = redis.call('GET', KEYS[1])
if raw then
  local base, units = string.match(raw, '^(%d+) (%S+)$')
  units = tonumber(units)
  if base == nil or units == nil then
    return redis.error_reply('BADSTATE KEYS[1] does not hold a rate limiter state')
  end
  -- Drained so far at the interval it was spent under (the stored one; the new one for a
  -- state without a stored configuration).
  local old = tonumber(string.match(previous, '^(%S+) ')) or tonumber(ARGV[1])
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local backlog = math.max(0, units - (now - tonumber(base)) / old)
  if backlog > 0 then
    redis.call('SET', KEYS[1], string.format('%d %.17g', now, backlog),
               'PX', math.floor(math.ceil(backlog * tonumber(ARGV[1])) / 1000) + 1)
  else
    redis.call('DEL', KEYS[1])
  end
end
redis.call('SET', KEYS[2], ARGV[1] .. ' ' .. ARGV[2])
return previous
