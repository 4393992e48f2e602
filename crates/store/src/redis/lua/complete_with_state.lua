-- complete_with_state(node, id, outcome, actor, ...): the completion of one request
-- (`complete_one`, complete_lib.lua) and, only if it was done, the state update that
-- follows it in ARGV (`apply_state_update`, state_lib.lua), in this one script.
-- 0 changed nothing, 1 done.
local done = complete_one(ARGV[3], ARGV[4], ARGV[5], now_ms())
if done == 1 then
  apply_state_update(ARGV[6], 7)
end
return done
