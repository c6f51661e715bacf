--[[
Read the state of a lock without changing it: holder, remaining lease and fencing history.

KEYS[1] lock (string): the lock; holds "<token>:<fence>" of the current holder
KEYS[2] fences (hash): fence, released and lost fencing tokens (see lock_acquire)
ARGV[1] token (string): a token to compare with the holder's ('' to compare with none)

Returns: {state, pttl_ms, holder_fence, last_fence, released_fence, lost_fence}: state 0 free,
  1 held by another token, 2 held by ARGV[1]; pttl_ms -2 when free, -1 when held without
  expiry; holder_fence 0 when free or unknown; the others 0 when never set
Flags: read-only
Redis: 6.2
]]
local held = redis.call('GET', KEYS[1])
local h = redis.call('HMGET', KEYS[2], 'fence', 'released', 'lost')
local state, pttl, holder = 0, -2, 0
if held then
  state = 1
  pttl = redis.call('PTTL', KEYS[1])
  local sep = string.find(held, ':', 1, true)
  if sep then
    holder = tonumber(string.sub(held, sep + 1)) or 0
    if ARGV[1] ~= '' and string.sub(held, 1, sep - 1) == ARGV[1] then
      state = 2
    end
  end
end
return {state, pttl, holder, tonumber(h[1]) or 0, tonumber(h[2]) or 0, tonumber(h[3]) or 0}
