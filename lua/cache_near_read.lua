--[[
Read an entry's fresh copy, its remaining life and the recompute time, for a near cache.

KEYS[1] copy (string): the fresh copy of a cache entry (written by cache_fill / cache_set)
KEYS[2] entry (hash): the entry itself (its field d: the loader's duration in ms, for XFetch)

Returns: {copy, pttl, delta}: the copy (false when there is none), its remaining life in
  ms (PTTL: -2 when absent) and the entry's recompute time in ms (false when unknown).
  One script, so the three are read at the same instant (a pipelined GET and PTTL could
  straddle a rewrite of the copy).
Flags: read-only
Redis: 6.2
]]
return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1]), redis.call('HGET', KEYS[2], 'd')}
