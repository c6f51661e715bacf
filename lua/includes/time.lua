-- server_ms(): the server's clock (TIME) in whole milliseconds, the one time source of
-- every primitive (a client's clock is never used).
local function server_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
