-- delete_string(key): DEL a string key (or nothing); refuse a key of another type like any
-- other command would (DEL alone would silently delete it).
local function delete_string(key)
  local kind = redis.call('TYPE', key).ok
  if kind ~= 'string' and kind ~= 'none' then
    return redis.error_reply('WRONGTYPE Operation against a key holding the wrong kind of value')
  end
  return redis.call('DEL', key)
end
