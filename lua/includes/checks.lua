-- The helper of the argument checks that the catalog generates from each script's header
-- (see docs/lua-headers.md). The checks run before the script touches any key, so a
-- malformed call answers a clear error naming the script and the argument, and writes
-- nothing. The checks themselves are inline expressions (one anchored find or tonumber per
-- argument): only this one function is made per call, the hot paths pay for nothing else.

-- pa_error(message, value): the error reply "ERR pyredis-atomic <script>: <message>", with
-- ', got "<value>"' when a value is given (cut to 64 bytes, control characters and quotes
-- replaced: the reply is one line).
local function pa_error(message, value)
  if value ~= nil then
    local shown = string.gsub(string.sub(value, 1, 64), '[%c"\\]', '?')
    if #value > 64 then shown = shown .. '...' end
    message = message .. ', got "' .. shown .. '"'
  end
  return redis.error_reply('ERR pyredis-atomic ' .. PA_SCRIPT .. ': ' .. message)
end
