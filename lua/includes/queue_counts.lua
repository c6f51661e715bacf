-- queue_counts(inflight, delayed, dead): how many messages a queue holds in flight, delayed
-- and dead (queue_stats, queue_metrics; the ready lists are counted per priority there).
local function queue_counts(inflight, delayed, dead)
  return redis.call('ZCARD', inflight), redis.call('ZCARD', delayed), redis.call('ZCARD', dead)
end
