-- enqueue(id, name, kind, caller, record, actor, parent, attempt): ARGV[3..] (actor:
-- encoded reference, empty for a service; parent: id of the request that made this
-- one, or empty). The fence is the caller when it is a member of the client.
-- Returns the node the request was assigned to, or nil when it was parked.
local now = now_ms()
local id, name, kind, record, actor, parent = ARGV[3], ARGV[4], ARGV[5], ARGV[7], ARGV[8], ARGV[9]
local key = P .. 'req:' .. id
if redis.call('EXISTS', key) == 1 then
  return redis.error_reply('ERR request ' .. id .. ' already exists')
end
local seq = redis.call('INCR', P .. 'seq')
redis.call('HSET', key, 'name', name, 'kind', kind, 'caller', ARGV[6], 'seq', seq, 'rec', record,
  'actor', actor, 'attempt', ARGV[10])
if parent ~= '' then
  redis.call('HSET', key, 'parent', parent)
  if kind ~= '1' then
    redis.call('SADD', P .. 'kids:' .. parent, id)
  end
end
return route(id, name, seq, record, now, actor)
