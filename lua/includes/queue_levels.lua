--- @include "constants"
-- ready_list(lists, entry): the ready list of a message (an id, or an entry "id/n"): the
-- lists are {pending, pending1, pending2, pending3}, by priority + 1. A message of priority
-- k > 0 carries PRIORITY_MARK .. k at the end of its id (before DEDUP_MARK); ids are
-- otherwise digits and "-", so the mark cannot appear by accident.
local function ready_list(lists, entry)
  local p = string.match(entry, PRIORITY_MARK .. '(%d)')
  return p and lists[tonumber(p) + 1] or lists[1]
end

-- higher_ready(lists): whether a list above priority 0 holds anything. One EXISTS for the
-- three of them (an empty list does not exist): the common queue, priority 0 only, pays one
-- call instead of one LLEN per level.
local function higher_ready(lists)
  return redis.call('EXISTS', lists[2], lists[3], lists[4]) > 0
end

-- first_ready(lists): the highest-priority list with something ready, else pending. One
-- EXISTS, then (only when a higher level holds something) one LLEN per higher level.
local function first_ready(lists)
  if not higher_ready(lists) then return lists[1] end
  for lv = #lists, 2, -1 do
    if redis.call('LLEN', lists[lv]) > 0 then return lists[lv] end
  end
  return lists[1]
end

-- push_by_level(cmd, lists, entries): LPUSH or RPUSH the entries onto their priorities'
-- lists, keeping their order within each list.
local function push_by_level(cmd, lists, entries)
  if #entries == 0 then return end
  local by, order = {}, {}
  for i = 1, #entries do
    local key = ready_list(lists, entries[i])
    local b = by[key]
    if not b then
      b = {}
      by[key] = b
      order[#order + 1] = key
    end
    b[#b + 1] = entries[i]
  end
  for i = 1, #order do redis.call(cmd, order[i], unpack(by[order[i]])) end
end
