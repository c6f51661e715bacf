--- @include "constants"
-- wake(signal, k): add k wake-up tokens for blocked consumers, keeping at most SIGNAL_CAP.
-- A list that already holds SIGNAL_CAP tokens gets none (one LLEN, no write): no consumer
-- is blocked while tokens are left (BLPOP would have taken one), and the next consumers to
-- block find SIGNAL_CAP of them, more than a capped list can ever give. A busy queue, whose
-- consumers never find it empty (only an empty claim clears the tokens), stays there.
local function wake(signal, k)
  local have = redis.call('LLEN', signal)
  if have >= SIGNAL_CAP then return end
  if k == 1 then
    redis.call('RPUSH', signal, '1')
  else
    local tokens = {}
    for i = 1, math.min(k, SIGNAL_CAP - have) do tokens[i] = '1' end
    redis.call('RPUSH', signal, unpack(tokens))
  end
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
