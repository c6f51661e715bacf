--- @include "constants"
-- wake(signal, k): add k wake-up tokens (at most SIGNAL_CAP) for blocked consumers. The
-- list is trimmed back to SIGNAL_CAP only once it reaches twice that: one LTRIM per
-- SIGNAL_CAP pushes instead of one per push while no consumer is blocked.
local function wake(signal, k)
  local n
  if k == 1 then
    n = redis.call('RPUSH', signal, '1')
  else
    local tokens = {}
    for i = 1, math.min(k, SIGNAL_CAP) do tokens[i] = '1' end
    n = redis.call('RPUSH', signal, unpack(tokens))
  end
  if n > 2 * SIGNAL_CAP then redis.call('LTRIM', signal, -SIGNAL_CAP, -1) end
end

-- forget_dedup_of(dedup, dedupof, id): drop the dedup mapping of a message that leaves the
-- queue (acked, dead-lettered), if it was pushed with one (its id ends in DEDUP_MARK) and
-- the mapping still points at it.
local function forget_dedup_of(dedup, dedupof, id)
  local key = string.byte(id, -1) == DEDUP_MARK_BYTE and redis.call('HGET', dedupof, id)
  if key then
    if redis.call('HGET', dedup, key) == id then redis.call('HDEL', dedup, key) end
    redis.call('HDEL', dedupof, id)
  end
end
