--[[
Add a signed delta to a bounded integer counter: reject or clamp a change that would cross a bound.

KEYS[1] counter (string): the value, a decimal integer within +-(2^53-1)
KEYS[2] config (string): the stored configuration "<min> <max> <mode>"; the first call stores its ARGV[2] here
KEYS[3] request (string): remembers the reply of one request id; KEYS[1] again when there is none
ARGV[1] delta (integer): signed integer change, within +-(2^53-1)
ARGV[2] config (packed): the caller's configuration "<min> <max> <mode>": min <= max, integers within +-(2^53-1) in canonical decimal (+-(2^53-1) for no bound), mode reject or clamp; must equal the stored one byte for byte
ARGV[3] options (packed): "<clamp> <initial> <ttl_ms> <request_ttl_ms>" (see below)

Returns: the value after, as an integer, when the whole delta was made (the common case:
  the shortest reply); else {value after, delta made}. A re-sent call with the same request
  id gets the first reply and changes nothing. A configuration other than the stored one
  fails with CONFIGMISMATCH and changes nothing.
]]
-- ARGV[3] packs the settings that the common case does not need (every argument costs the
-- client time, and parsing costs the server time, on the hot path): clamp 1 saturates at
-- the bound, 0 rejects a change that would cross it (the caller's choice per call: either
-- way the value stays within the stored bounds); initial the value of an absent counter
-- (it must lie within the stored bounds); ttl_ms the lifetime of a counter this call
-- creates (0: none; a fixed window that later changes keep; the stored configuration
-- expires with it); request_ttl_ms how long KEYS[3] remembers the reply.
--
-- The configuration: the bounds come from the stored one (KEYS[2]), never from the call.
-- The common call finds ARGV[2] equal to the stored text byte for byte, so it parses
-- nothing more than the one bound in the delta's direction.
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

local remember = KEYS[3] ~= KEYS[1]
local fingerprint, remembered
if remember then
  fingerprint = ARGV[1] .. ':' .. option(1)
  -- remembered(): the first reply to this request id (nil when there is none).
  remembered = function()
    local memo = redis.call('GET', KEYS[3])
    if not memo then
      return nil
    end
    local fp, a, v, d = string.match(memo, '^([^|]*)|(%d)|(%-?%d+)|(%-?%d+)$')
    if fp == nil then
      return redis.error_reply('BADREQUEST KEYS[3] does not hold a remembered counter reply')
    end
    if fp ~= fingerprint then
      return redis.error_reply('REQUESTREUSED KEYS[3] remembers another change for this ' ..
                               'request id (delta:clamp ' .. fp .. ')')
    end
    if a == '1' then
      return tonumber(v)
    end
    return {tonumber(v), tonumber(d)}
  end
end

local stored = redis.call('GET', KEYS[2])
-- store_config: no configuration is stored (a new counter, or one written before
-- configurations were stored): this call stores its own.
local store_config = false
if stored ~= ARGV[2] then
--- @include "config"
--- @include "counter_config"
  if counter_bounds(ARGV[2]) == nil then
    return pa_error(COUNTER_CONFIG, ARGV[2])
  end
  if stored then
    -- A re-sent request still gets its first reply (its change was made under the
    -- configuration stored then); anything else is refused.
    local reply = remember and remembered()
    if reply then
      return reply
    end
    return config_mismatch(stored, ARGV[2])
  end
  store_config = true
end
if remember then
  local reply = remembered()
  if reply then
    return reply
  end
end
local delta = tonumber(ARGV[1])
-- The bound in the delta's direction, from the configuration (now known to be the stored
-- one): max for delta >= 0, else min.
-- (Plain finds and a sub: cheaper than a pattern match, on every call.)
local space = string.find(ARGV[2], ' ', 1, true)
local bound
if space and delta >= 0 then
  local after = string.find(ARGV[2], ' ', space + 1, true)
  bound = after and tonumber(string.sub(ARGV[2], space + 1, after - 1))
elseif space then
  bound = tonumber(string.sub(ARGV[2], 1, space - 1))
end
if not bound then
  -- Only a stored text that something else wrote can get here (it equals ARGV[2]).
  return redis.error_reply('BADCONFIG KEYS[2] does not hold a counter configuration')
end
local raw = redis.call('GET', KEYS[1])
local cur
if raw then
  -- Canonical decimal only, so that INCRBY below cannot fail (int64: far beyond 2^53).
  cur = (#raw <= 17 and (raw == '0' or string.find(raw, '^%-?[1-9]%d*$'))) and tonumber(raw)
  if not cur or cur > LIMIT or cur < -LIMIT then
    return redis.error_reply(NOTINT)
  end
else
  local lo, hi = string.match(ARGV[2], '^(%S+) (%S+) ')
  cur = tonumber(option(2))
  if not (tonumber(lo) and tonumber(hi)) or cur < tonumber(lo) or cur > tonumber(hi) then
    return redis.error_reply('OUTOFBOUNDS ARGV[3] initial ' .. option(2) ..
                             ' lies outside the stored bounds [' .. lo .. ', ' .. hi .. ']')
  end
end

local new = cur + delta
if (delta > 0 and new > bound) or (delta < 0 and new < bound) then
  -- Clamp saturates at the bound but never moves the value against the delta's direction
  -- (a value already past the bound, written before its configuration was stored, stays
  -- put).
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
    -- The common case: INCRBY does exact int64 arithmetic on the stored text and keeps
    -- the expiry. The delta goes as the number (exact: within 2^53), whatever syntax the
    -- caller used.
    redis.call('INCRBY', KEYS[1], delta)
  else
    local text = string.format('%d', new)
    if raw then
      redis.call('SET', KEYS[1], text, 'KEEPTTL')
    elseif option(3) ~= '0' then
      redis.call('SET', KEYS[1], text, 'PX', option(3))
      -- A new window: the stored configuration lives as long as the counter.
      if not store_config then
        redis.call('PEXPIRE', KEYS[2], option(3))
      end
    else
      redis.call('SET', KEYS[1], text)
      if not store_config then
        redis.call('SET', KEYS[2], ARGV[2])  -- no expiry (SET drops any)
      end
    end
  end
end

if store_config then
--- @include "counter_store"
  -- The configuration expires with the counter (a counter with a ttl is one window).
  local pttl = 0
  if raw then
    pttl = redis.call('PTTL', KEYS[1])
  elseif option(3) ~= '0' then
    pttl = tonumber(option(3))
  end
  store_counter_config(pttl)
end

if remember then
  redis.call('SET', KEYS[3], fingerprint .. '|' .. applied .. '|' .. string.format('%d', new) ..
             '|' .. string.format('%d', made), 'PX', option(4))
end
if applied == 1 then
  return new
end
return {new, made}
