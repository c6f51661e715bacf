--[[
Read a cache entry for get_or_set: the value, or a fill lease for this caller, or a wait.

KEYS[1] entry (hash): the entry: value fields (p n f d e s wt) and fill lease fields (lt lx w)
ARGV[1] spec: "<token> <lease_ms> <gap> <format>": lease token if this caller becomes the loader (unique per call), length of a new lease (lock_ttl) in ms, XFetch draw beta * -ln(u) for u uniform in (0, 1] (0: early refresh off), serializer name

Returns: payload (a bare string) for a fresh value (or a stale one while another caller
  refreshes); {0, '', 1} the same for a stored None;
  {1} load: the caller now holds the lease (cold miss, or stale value due for refresh);
  {2, payload, none} early refresh: the value is fresh but the XFetch rule chose this
  caller to reload it (it holds the lease); {3, pttl} wait: another caller holds the lease
  for pttl more milliseconds; {4, format} the value was written with another serializer.
  none is 1 for a stored None, else 0. A re-sent call (same token) gets the same answer.
Redis: 6.2
]]
-- One packed argument, not four: the hit path is this script, and every argument costs
-- the client an encode and the wire a few bytes.
local entry = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', entry, 'p', 'n', 'f', 'd', 'e', 's', 'lt', 'lx')
local token, lease_arg, gap_arg, format = string.match(ARGV[1], '^(%S+) (%d+) (%S+) (.*)$')
if not token then
  return redis.error_reply('BADSPEC malformed argument for KEYS[1]: ' .. ARGV[1])
end
local lease_ms = tonumber(lease_arg)

local leased = h[7] and tonumber(h[8]) > now
local mine = leased and h[7] == token

local function take_lease()
  redis.call('HSET', entry, 'lt', token, 'lx', now + lease_ms)
  -- the entry must outlive the lease (a cold miss creates it: PTTL is then -1)
  if redis.call('PTTL', entry) < lease_ms then
    redis.call('PEXPIRE', entry, lease_ms)
  end
end

if h[1] and tonumber(h[6]) > now then
  if h[3] ~= format then
    return {4, h[3] or ''}
  end
  local none = 0
  if h[2] then none = 1 end
  local function hit()
    if none == 1 then
      return {0, '', 1}
    end
    return h[1]
  end
  local expiry = tonumber(h[5])
  if now < expiry then
    if mine then
      return {2, h[1], none}
    end
    local gap = tonumber(gap_arg)
    if leased or gap <= 0 or now + tonumber(h[4]) * gap < expiry then
      return hit()
    end
    take_lease()
    return {2, h[1], none}
  end
  -- stale: past its logical expiry, still kept for stale_ttl
  if leased and not mine then
    return hit()
  end
  if not mine then
    take_lease()
  end
  return {1}
end

if leased then
  if mine then
    return {1}
  end
  redis.call('HINCRBY', entry, 'w', 1)
  return {3, tonumber(h[8]) - now}
end
take_lease()
return {1}
