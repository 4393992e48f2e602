-- enqueue(id, name, kind, caller, record, actor): ARGV[3..] (actor: encoded reference,
-- empty for a service)
-- Returns the node the request was assigned to, or nil when it was parked.
local now = now_ms()
local id, name, record, actor = ARGV[3], ARGV[4], ARGV[7], ARGV[8]
local key = P .. 'req:' .. id
if redis.call('EXISTS', key) == 1 then
  return redis.error_reply('ERR request ' .. id .. ' already exists')
end
local seq = redis.call('INCR', P .. 'seq')
redis.call('HSET', key, 'name', name, 'kind', ARGV[5], 'caller', ARGV[6], 'seq', seq, 'rec', record, 'actor', actor)
return route(id, name, seq, record, now, actor)
