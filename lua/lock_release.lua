--[[
Release the lock if ARGV[1] holds it and wake one waiter; a re-sent release reports that it already happened.

KEYS[1] lock (string): the lock; holds "<token>:<fence>" of the current holder
KEYS[2] fences (hash): fence, released and lost fencing tokens (see lock_acquire)
KEYS[3] signal (list): wake-up list; left holding one wake-up (never more)
ARGV[1] token (string): token of the acquisition being released
ARGV[2] fence (int >= 0): fencing token of that acquisition (0 if unknown: then a re-send cannot be recognised)
ARGV[3] wake_ms (int > 0, ms): how long a wake-up nobody takes stays in the signal list

Returns: 1 released; 2 not held, but this acquisition was released by its holder before
  (a re-sent release whose first reply was lost); 0 not held by ARGV[1] (lease expired, or
  the lock was broken or taken by another). When the lock is free afterwards, a wake-up is
  left in the signal list either way.
Redis: 6.2
]]
--- @include "lock_wake"
local mine = ARGV[1] .. ':'
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, #mine) == mine then
  -- Check the types (LLEN, HSET) before the lock is deleted.
  local pending = redis.call('LLEN', KEYS[3])
  redis.call('HSET', KEYS[2], 'released', string.sub(held, #mine + 1))
  redis.call('DEL', KEYS[1])
  wake_one(KEYS[3], pending, ARGV[3])
  return 1
end
local h = redis.call('HMGET', KEYS[2], 'fence', 'released', 'lost')
if not held then
  -- Free: make sure a waiter learns it (this may be a waiter giving up after it took a
  -- wake-up it will not use).
  wake_one(KEYS[3], redis.call('LLEN', KEYS[3]), ARGV[3])
end
local f = tonumber(ARGV[2]) or 0
local last = tonumber(h[1]) or 0
local released = tonumber(h[2]) or 0
local lost = tonumber(h[3]) or 0
-- Fence f ended by its holder's release iff: it is still the last fence and was released;
-- or a later acquisition found it released (it marks the previous fence lost otherwise).
-- A later loss hides that answer: then 0, the cautious reply.
if f > 0 and ((f == last and released == f) or (f < last and lost < f)) then
  return 2
end
return 0
