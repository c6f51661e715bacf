--- @include "constants"
-- The end of every write to a cache entry (cache_fill, cache_set, cache_delete).

-- copy_type_ok(copy): the fresh copy's key is absent or a string (checked before any write,
-- so a key of the wrong type changes nothing).
local function copy_type_ok(copy)
  return ({none = 1, string = 1})[redis.call('TYPE', copy).ok] ~= nil
end

-- store_value(entry, payload, none, format, delta_ms, now, ttl, stale, ...): replace the
-- entry by a value (a stored None when none) that is fresh for ttl ms and served stale for
-- stale ms more; the trailing field/value pairs are stored with it.
local function store_value(entry, payload, none, format, delta_ms, now, ttl, stale, ...)
  local life = ttl + stale
  redis.call('DEL', entry)
  redis.call('HSET', entry, 'p', payload, 'f', format, 'd', delta_ms, 'e', now + ttl,
    's', now + life, ...)
  if none then
    redis.call('HSET', entry, 'n', '1')
  end
  redis.call('PEXPIRE', entry, life)
end

-- write_copy(copy, tag, payload, none, safe, pxat): the fresh copy a hit reads with a plain
-- GET: serializer tag, kind, payload. safe: readable for any XFetch draw, else only while
-- early refresh is off.
local function write_copy(copy, tag, payload, none, safe, pxat)
  local kind
  if none then
    if safe then kind = COPY_NONE else kind = COPY_NONE_FULL end
  else
    if safe then kind = COPY_VALUE else kind = COPY_VALUE_FULL end
  end
  redis.call('SET', copy, tag .. kind .. payload, 'PXAT', pxat)
end

-- wake_waiters(wake, waiters, wake_ms): top the wake list up to one signal per counted
-- waiter (in batches: unpack has a limit), expiring after wake_ms.
local function wake_waiters(wake, waiters, wake_ms)
  local missing = waiters - redis.call('LLEN', wake)
  while missing > 0 do
    local batch = {}
    for i = 1, math.min(missing, 1000) do
      batch[i] = '1'
    end
    redis.call('RPUSH', wake, unpack(batch))
    missing = missing - #batch
  end
  if waiters > 0 then
    redis.call('PEXPIRE', wake, wake_ms)
  end
end
