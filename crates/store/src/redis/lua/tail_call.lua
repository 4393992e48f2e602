-- tail_call: ARGV[3..]; the fence is `node`.
--   node      the executor of step k
--   id        the request
--   name      routing name of step k+1
--   actor     encoded target actor of step k+1 ('' for a service)
--   record    postcard Request: step k+1
--   stays     '1': step k+1 stays on `node` (which holds the actor lock and runs it at
--             once: no inbox message); '0': routed like a new request (keeping its
--             arrival order)
--   attempt   delivery attempt of step k+1
-- Completes step k of request `id` and makes `record` its new content, in one
-- transition. Returns the assignee, nil when parked, -2 when the request is not queued
-- on `node`.
local now = now_ms()
local node, id, name, actor, record, stays, attempt = unpack(ARGV, 3, 9)
local key = P .. 'req:' .. id
local f = redis.call('HMGET', key, 'status', 'assignee', 'seq')
if f[1] ~= QUEUED or f[2] ~= node then
  return -2
end
local seq = f[3]
redis.call('HSET', key, 'name', name, 'actor', actor, 'rec', record, 'attempt', attempt)
if stays == '1' then
  return node
end
redis.call('ZREM', P .. 'assigned:' .. node, id)
return route(id, name, seq, record, now, actor)
