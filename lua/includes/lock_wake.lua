-- wake_one(signal, pending, wake_ms): leave one wake-up at most in a lock's signal list
-- (pending: its length, read before any write). Redis hands it to the longest-blocked
-- waiter at once; if nobody waits, it stays (refreshed, expiring) for whoever comes next.
local function wake_one(signal, pending, wake_ms)
  if pending == 0 then
    redis.call('RPUSH', signal, '1')
  end
  redis.call('PEXPIRE', signal, wake_ms)
end
