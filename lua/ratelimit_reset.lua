--[[
Forget a rate limiter's state: it is full again.

KEYS[1] state (string): "<base_us> <backlog>" of the limiter

Returns: 1 if there was a state to delete, else 0
]]
--- @include "delete_string"
return delete_string(KEYS[1])
