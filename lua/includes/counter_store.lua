-- store_counter_config(pttl): KEYS[2] := ARGV[2], the configuration, living as long as the
-- counter (pttl ms when the counter has an expiry, else for good).
local function store_counter_config(pttl)
  if pttl > 0 then
    redis.call('SET', KEYS[2], ARGV[2], 'PX', pttl)
  else
    redis.call('SET', KEYS[2], ARGV[2])
  end
end
