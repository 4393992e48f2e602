-- state_update(actor, ...): ARGV[3] is the actor, then the four counted lists of
-- `apply_state_update` (state_lib.lua). Returns {removed, added}.
local removed, added = apply_state_update(ARGV[3], 4)
return { removed, added }
