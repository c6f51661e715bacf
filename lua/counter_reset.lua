--[[
Delete a bounded counter, so that it reads as its initial value and its next change starts a new window.

KEYS[1] counter (string): the value

Returns: 1 if a counter was deleted, else 0
]]
--- @include "delete_string"
return delete_string(KEYS[1])
