-- counter_bounds(text): min, max of a counter configuration "<min> <max> <mode>" (min <=
-- max, integers in canonical decimal within +-(2^53-1), mode reject or clamp), or nil when
-- the text is not one. Only the canonical spelling passes: configurations are compared
-- byte for byte, so two spellings of one configuration would be two configurations.
local function counter_bounds(text)
  local lo, hi, mode = string.match(text, '^(%-?%d+) (%-?%d+) (%a+)$')
  if lo == nil or (mode ~= 'reject' and mode ~= 'clamp') then
    return nil
  end
  for _, v in ipairs({lo, hi}) do
    if not (v == '0' or (#v <= 17 and string.find(v, '^%-?[1-9]%d*$'))) then
      return nil
    end
  end
  lo, hi = tonumber(lo), tonumber(hi)
  if math.abs(lo) > 9007199254740991 or math.abs(hi) > 9007199254740991 or lo > hi then
    return nil
  end
  return lo, hi
end

local COUNTER_CONFIG = 'ARGV[2] config must be "<min> <max> <reject|clamp>" (integers ' ..
  'within +-(2^53-1) in canonical decimal, min <= max)'
