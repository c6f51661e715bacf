--[[
Add a signed delta to a bounded integer counter: reject or clamp a change that would cross a bound.

KEYS[1] counter (string): the value, a decimal integer within +-(2^53-1)
KEYS[2] request (string): remembers the reply of one request id; KEYS[1] again when there is none
ARGV[1] delta (integer): signed integer change, within +-(2^53-1)
ARGV[2] bound (integer): the bound in the delta's direction (max for delta >= 0, else min; +-(2^53-1) for none)
ARGV[3] options (packed): "<clamp> <initial> <ttl_ms> <request_ttl_ms>" (see below)

Returns: the value after, as an integer, when the whole delta was made (the common case:
  the shortest reply); else {value after, delta made}. A re-sent call with the same request
  id gets the first reply and changes nothing.
]]
-- ARGV[3] packs the settings that the common case does not need (every argument costs the
-- client time, and parsing costs the server time, on the hot path): clamp 1 saturates at
-- the bound, 0 rejects a change that would cross it; initial the value of an absent
-- counter; ttl_ms the lifetime of a counter this call creates (0: none; a fixed window that
-- later changes keep); request_ttl_ms how long KEYS[2] remembers the reply.
--
-- Lua numbers are doubles: every integer up to 2^53 is exact. Values, bounds and deltas stay
-- within +-LIMIT, so cur + delta may round only beyond 2^53, where it is past any bound
-- anyway (rounding is monotonic and 2^53 itself is exact): the comparisons stay right and
-- every value written is exact.
local LIMIT = 9007199254740991
if not string.find(ARGV[3], '^[01] %-?%d+ %d+ [1-9]%d*$') then
  return pa_error('ARGV[3] options must be "<clamp> <initial> <ttl_ms> <request_ttl_ms>" ' ..
                  '(clamp 0 or 1, initial an integer, ttl_ms >= 0, request_ttl_ms > 0)', ARGV[3])
end
local NOTINT = 'NOTINT KEYS[1] does not hold an integer within +-(2^53-1)'

local options
local function option(i)
  if options == nil then
    options = {string.match(ARGV[3], '^([01]) (%-?%d+) (%d+) (%d+)$')}
  end
  return options[i]
end

local remember = KEYS[2] ~= KEYS[1]
local fingerprint
if remember then
  fingerprint = ARGV[1] .. ':' .. option(1)
  local memo = redis.call('GET', KEYS[2])
  if memo then
    local fp, a, v, d = string.match(memo, '^([^|]*)|(%d)|(%-?%d+)|(%-?%d+)$')
    if fp == nil then
      return redis.error_reply('BADREQUEST KEYS[2] does not hold a remembered counter reply')
    end
    if fp ~= fingerprint then
      return redis.error_reply('REQUESTREUSED KEYS[2] remembers another change for this ' ..
                               'request id (delta:clamp ' .. fp .. ')')
    end
    if a == '1' then
      return tonumber(v)
    end
    return {tonumber(v), tonumber(d)}
  end
end

local delta = tonumber(ARGV[1])
local raw = redis.call('GET', KEYS[1])
local cur
if raw then
  cur = tonumber(raw)
  if cur == nil or cur % 1 ~= 0 or cur > LIMIT or cur < -LIMIT then
    return redis.error_reply(NOTINT)
  end
else
  cur = tonumber(option(2))
end

local new = cur + delta
local bound = tonumber(ARGV[2])
if (delta > 0 and new > bound) or (delta < 0 and new < bound) then
  -- Clamp saturates at the bound but never moves the value against the delta's direction
  -- (a value already past the bound, after the bounds were changed, stays put).
  if option(1) == '1' then
    new = (delta > 0) and math.max(cur, bound) or math.min(cur, bound)
  else
    new = cur
  end
end
local made = new - cur
local applied = (made == delta) and 1 or 0

if made ~= 0 then
  if raw and applied == 1 then
    -- The common case: INCRBY does exact int64 arithmetic on the stored text, keeps the
    -- expiry, and refuses text that tonumber() took for an integer but is not one ("1e3").
    -- The delta goes as the number (exact: within 2^53), whatever syntax the caller used.
    if type(redis.pcall('INCRBY', KEYS[1], delta)) == 'table' then
      return redis.error_reply(NOTINT)
    end
  else
    local text = string.format('%d', new)
    if raw then
      redis.call('SET', KEYS[1], text, 'KEEPTTL')
    elseif option(3) ~= '0' then
      redis.call('SET', KEYS[1], text, 'PX', option(3))
    else
      redis.call('SET', KEYS[1], text)
    end
  end
end

if remember then
  redis.call('SET', KEYS[2], fingerprint .. '|' .. applied .. '|' .. string.format('%d', new) ..
             '|' .. string.format('%d', made), 'PX', option(4))
end
if applied == 1 then
  return new
end
return {new, made}
