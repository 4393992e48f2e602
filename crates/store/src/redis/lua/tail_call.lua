-- tail_call(node, id, name, actor, record, local, attempt): ARGV[3..]; the fence is
-- `node`.
-- Completes step k of request `id` (executed by `node`) and makes `record` (step k+1,
-- delivery attempt `attempt`) its new content, in one transition. With local = '1'
-- the continuation stays assigned to `node` (which holds the actor lock and runs it at
-- once: no inbox message); otherwise it is routed like a new request (keeping its
-- arrival order).
-- Returns the assignee, nil when parked, -2 when the request is not queued on `node`.
local now = now_ms()
local node, id, name, actor, record = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local key = P .. 'req:' .. id
local f = redis.call('HMGET', key, 'status', 'assignee', 'seq')
if f[1] ~= QUEUED or f[2] ~= node then
  return -2
end
local seq = f[3]
redis.call('HSET', key, 'name', name, 'actor', actor, 'rec', record, 'attempt', ARGV[9])
if ARGV[8] == '1' then
  return node
end
redis.call('ZREM', P .. 'assigned:' .. node, id)
return route(id, name, seq, record, now, actor)
