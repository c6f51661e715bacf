-- GCRA with the theoretical arrival time kept as a backlog counted in intervals relative to
-- an integer timestamp: burst hits at one instant add exact integers, so "burst allowed,
-- then one per interval" holds exactly, whatever fraction period/rate is. Shared by
-- ratelimit_hit and ratelimit_peek, so a peek answers exactly what a hit would.
local EPS = 1e-9

-- gcra_config(config, interval, burst): the stored configuration "<interval_us> <burst>"
-- (KEYS[2]) against the call's ARGV text: interval_us, burst as numbers (the stored ones:
-- the state only ever moves under them) and whether the call must store its own (none is
-- stored yet); or nil and the error reply. The common call finds the text equal byte for
-- byte; else the two are compared as numbers (another language may spell the interval
-- otherwise, or divide in another order: equal within 1e-9 is the same configuration).
local function gcra_config(config, interval, burst)
  local stored = redis.call('GET', config)
  if stored == interval .. ' ' .. burst then
    return tonumber(interval), tonumber(burst), false
  end
  if not stored then
    return tonumber(interval), tonumber(burst), true
  end
  local s_interval, s_burst = string.match(stored, '^(%S+) (%S+)$')
  s_interval, s_burst = tonumber(s_interval), tonumber(s_burst)
  local i = tonumber(interval)
  if s_interval and s_burst == tonumber(burst) and
      math.abs(s_interval - i) <= 1e-9 * math.max(s_interval, i) then
    return s_interval, s_burst, false
  end
--- @include "config"
  return nil, config_mismatch(stored, interval .. ' ' .. burst)
end

-- gcra(state, interval_us, burst, cost): what a hit of cost units gets now, from the
-- limiter's state key (numbers). Returns now_us, backlog_after, reset_after_us
-- and the reply when the hit is allowed; nil, nil, nil and the reply when it is denied (or
-- the key holds no limiter state: then the reply is an error).
local function gcra(state, interval, burst, cost)
  cost = tonumber(cost)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local backlog = 0
  local raw = redis.call('GET', state)
  if raw then
    local base, units = string.match(raw, '^(%d+) (%S+)$')
    units = tonumber(units)
    if base == nil or units == nil then
      return nil, nil, nil,
        redis.error_reply('BADSTATE KEYS[1] does not hold a rate limiter state')
    end
    backlog = math.max(0, units - (now - tonumber(base)) / interval)
  end
  local after = backlog + cost
  if after > burst + EPS then
    return nil, nil, nil,
      string.format('0 %d %d %d', math.max(0, math.floor(burst - backlog + EPS)),
                    math.ceil((after - burst) * interval), math.ceil(backlog * interval))
  end
  local reset_us = math.ceil(after * interval)
  return now, after, reset_us,
    string.format('1 %d 0 %d', math.max(0, math.floor(burst - after + EPS)), reset_us)
end
