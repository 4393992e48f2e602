-- complete(node, id, outcome): ARGV[3..]; the fence is `node`. The completion of one
-- request (`complete_one`, complete_lib.lua): 0 changed nothing, 1 done.
return complete_one(ARGV[3], ARGV[4], ARGV[5], now_ms())
