-- adopt(node, batch, names...): ARGV[3..]
-- Routes the oldest `batch` requests parked for each of the names of member `node`
-- (in arrival order; an actor request goes to its placement if that member lives) and
-- returns how many stay parked for them, or -1 if `node` is not live (its adoption
-- ends: the live members offering the names resume it, `renew.lua`). Bounded, so that
-- a backlog is adopted by many short scripts between which Redis serves everyone else
-- (renewals above all).
local now = now_ms()
local node, batch = ARGV[3], tonumber(ARGV[4])
if not live(node, now) then
  return -1
end
local left = 0
for i = 5, #ARGV do
  local name = ARGV[i]
  local parked = P .. 'parked:' .. name
  local ids = redis.call('ZRANGE', parked, 0, batch - 1)
  for _, id in ipairs(ids) do
    redis.call('ZREM', parked, id)
    local f = redis.call('HMGET', P .. 'req:' .. id, 'seq', 'rec', 'actor')
    route(id, name, f[1], f[2], now, f[3], true)
  end
  left = left + redis.call('ZCARD', parked)
end
return left
