--[[
Read a cache entry for get_or_set: the value, or a fill lease for this caller, or a wait.

KEYS[1] entry (hash): the entry: value fields (p n f d e s wt) and fill lease fields (lt lx w)
ARGV[1] spec (packed): "<gap> <lease_ms> <token> <format>": XFetch draw beta * -ln(u) for u uniform in (0, 1] (0: early refresh off), length of a new lease (lock_ttl) in ms, lease token if this caller becomes the loader (unique per call, no spaces), serializer name

Returns: payload (a bare string) for a fresh value; {0, '', 1} the same for a stored None;
  {5, payload, none} a stale value (past its logical expiry, within stale_ttl) served
  while another caller refreshes it;
  {1} load: the caller now holds the lease (cold miss, or stale value due for refresh);
  {2, payload, none} early refresh: the value is fresh but the XFetch rule chose this
  caller to reload it (it holds the lease); {3, pttl} wait: another caller holds the lease
  for pttl more milliseconds; {4, format} the value was written with another serializer.
  none is 1 for a stored None, else 0. A re-sent call (same token) gets the same answer.
Redis: 6.2
]]
--- @include "time"
-- This script is the hit path, so it is written for speed: one packed argument (each
-- argument costs the client an encode), split with plain finds (a pattern match costs
-- more than the rest of a hit), and the lease fields are read only when needed.
local entry = KEYS[1]
local spec = ARGV[1]
local s1 = string.find(spec, ' ', 1, true)
local s2 = s1 and string.find(spec, ' ', s1 + 1, true)
local s3 = s2 and string.find(spec, ' ', s2 + 1, true)
local gap = s3 and tonumber(string.sub(spec, 1, s1 - 1))
local lease_ms = gap and tonumber(string.sub(spec, s1 + 1, s2 - 1))
-- Number checks only (tonumber, comparisons): the lease is used as a number, never as text.
if not (lease_ms and gap >= 0 and gap < math.huge and lease_ms >= 1 and lease_ms % 1 == 0
        and lease_ms <= 9007199254740991 and s3 > s2 + 1) then
  return pa_error('ARGV[1] spec must be "<gap> <lease_ms> <token> <format>" (gap a number ' ..
                  '>= 0, lease_ms a positive integer, token not empty)', spec)
end
local now = server_ms()
local h = redis.call('HMGET', entry, 'p', 'n', 'f', 'd', 'e')

local payload = h[1]
local none = 0
if h[2] then none = 1 end

if payload then
  local expiry = tonumber(h[5])
  if now < expiry then
    if h[3] ~= string.sub(spec, s3 + 1) then
      return {4, h[3] or ''}
    end
    if gap <= 0 or now + tonumber(h[4]) * gap < expiry then
      if none == 1 then return {0, '', 1} end
      return payload
    end
  end
end

-- Past the fast path: early refresh, stale, cold miss, or a wait.
local token = string.sub(spec, s2 + 1, s3 - 1)
local l = redis.call('HMGET', entry, 's', 'lt', 'lx')
local leased = l[2] and tonumber(l[3]) > now
local mine = leased and l[2] == token

local function take_lease()
  redis.call('HSET', entry, 'lt', token, 'lx', now + lease_ms)
  -- the entry must outlive the lease (a cold miss creates it: PTTL is then -1)
  if redis.call('PTTL', entry) < lease_ms then
    redis.call('PEXPIRE', entry, lease_ms)
  end
end

-- A value due for refresh: another caller refreshing it serves the value (nil: this caller
-- refreshes it and now holds the lease).
local function served_by_refresher()
  if leased and not mine then
    if now >= tonumber(h[5]) then return {5, payload, none} end
    if none == 1 then return {0, '', 1} end
    return payload
  end
  if not mine then
    take_lease()
  end
  return nil
end

if payload and tonumber(l[1]) > now then
  if h[3] ~= string.sub(spec, s3 + 1) then
    return {4, h[3] or ''}
  end
  -- fresh, and the XFetch rule chose this caller: refresh early unless one already does;
  -- or stale: past its logical expiry, still kept for stale_ttl
  local served = served_by_refresher()
  if served then
    return served
  end
  if now < tonumber(h[5]) then
    return {2, payload, none}
  end
  return {1}
end

if leased then
  if mine then
    return {1}
  end
  redis.call('HINCRBY', entry, 'w', 1)
  return {3, tonumber(l[3]) - now}
end
take_lease()
return {1}
