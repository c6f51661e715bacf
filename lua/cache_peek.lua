--[[
Read a cache entry's value if it is fresh (plain get: never loads, never waits).

KEYS[1] entry (hash): the cache entry (value and lease fields)
ARGV[1] format (string): serializer name this caller decodes with

Returns: {1, payload, none} for a fresh value (none is 1 for a stored None);
  {0} when there is no fresh value; {4, format} when it was written with another serializer
Flags: read-only
Redis: 6.2
]]
--- @include "time"
local entry = KEYS[1]
local now = server_ms()
local h = redis.call('HMGET', entry, 'p', 'n', 'f', 'e')
if not h[1] or tonumber(h[4]) <= now then
  return {0}
end
if h[3] ~= ARGV[1] then
  return {4, h[3] or ''}
end
if h[2] then
  return {1, h[1], 1}
end
return {1, h[1], 0}
