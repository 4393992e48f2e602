-- complete(node, id, outcome): ARGV[3..]
-- -1: `node` is no longer a member (fenced); 0: unknown or already complete; 1: done.
local now = now_ms()
local node, id, outcome = ARGV[3], ARGV[4], ARGV[5]
if not live(node, now) then
  -- An expired member is dead even if no sweep has removed it yet.
  remove_member(node, now)
  return -1
end
local key = P .. 'req:' .. id
local f = redis.call('HMGET', key, 'status', 'kind', 'caller', 'assignee', 'name')
local status, kind, caller, assignee, name = f[1], f[2], f[3], f[4], f[5]
if not status or status == 'd' then
  return 0
end
if assignee then
  redis.call('ZREM', P .. 'assigned:' .. assignee, id)
end
if status == 'p' then
  redis.call('ZREM', P .. 'parked:' .. name, id)
end
if kind ~= '1' and redis.call('HEXISTS', P .. 'members', caller) == 1 then
  redis.call('HSET', key, 'status', 'd', 'outcome', outcome)
  redis.call('HDEL', key, 'assignee', 'rec')
  redis.call('SADD', P .. 'done:' .. caller, id)
  redis.call('XADD', P .. 'inbox:' .. caller, '*', 't', 'c', 'i', id, 'k', kind, 'p', outcome)
else
  -- A tell, or a caller that is gone: nobody will collect the outcome.
  redis.call('DEL', key)
end
return 1
