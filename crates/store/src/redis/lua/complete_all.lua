-- complete_all(node, id1, outcome1, id2, outcome2, ...): ARGV[3..]; the fence is
-- `node`. The completions of several requests executed by `node` (group commit), each
-- exactly `complete_one` (complete_lib.lua) in turn: one script call, one fence check
-- for all. Returns per request 0 (changed nothing) or 1 (done), in order.
local now = now_ms()
local node = ARGV[3]
local out = {}
for i = 4, #ARGV - 1, 2 do
  out[#out + 1] = complete_one(node, ARGV[i], ARGV[i + 1], now)
end
return out
