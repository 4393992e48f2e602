-- enqueue: ARGV[3..]
--   id       request id
--   name     routing name (service or actor type)
--   kind     0 call, 1 tell, 2 promise
--   caller   node that made it
--   record   postcard Request
--   actor    encoded target actor ('' for a service)
--   parent   id of the request that made this one ('' if unknown)
--   attempt  delivery attempt
-- The fence is the caller when it is a member of the client.
-- Returns the node the request was assigned to, or nil when it was parked.
local now = now_ms()
local id, name, kind, caller, record, actor, parent, attempt = unpack(ARGV, 3, 10)
local key = P .. 'req:' .. id
if redis.call('EXISTS', key) == 1 then
  invariant('request ' .. id .. ' already exists')
end
local seq = store_request(id, name, kind, caller, record, actor)
redis.call('HSET', key, 'attempt', attempt)
if parent ~= '' then
  redis.call('HSET', key, 'parent', parent)
  if kind ~= TELL then
    redis.call('SADD', P .. 'kids:' .. parent, id)
  end
end
return route(id, name, seq, record, now, actor)
