-- Stored configuration (issue 16): the first writer stores its configuration next to the
-- state; every later call must give the same one. These helpers run only off the hot path
-- (the marker sits inside the branch taken when the given configuration is not byte for
-- byte the stored one), so the common call makes none of them.

-- config_mismatch(stored, given): the CONFIGMISMATCH error reply naming the config key
-- (KEYS[2] of every script that checks a configuration), both configurations cut to 128
-- bytes, control characters and quotes replaced (the reply is one line).
local function config_mismatch(stored, given)
  local function shown(v)
    return (string.gsub(string.sub(v, 1, 128), '[%c"\\]', '?'))
  end
  return redis.error_reply('CONFIGMISMATCH KEYS[2] stores "' .. shown(stored) ..
                           '", the call gives "' .. shown(given) .. '"')
end
