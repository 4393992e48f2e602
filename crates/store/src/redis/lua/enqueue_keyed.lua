-- enqueue_keyed: ARGV[3..]
--   id .. attempt   as enqueue.lua (id, name, kind, caller, record, actor, parent, attempt)
--   ikey            the key's suffix: <len(target)>:<target><key> (see idempotency.rs)
--   retention       the key's window, ms
-- The fence is the caller when it is a member of the client.
-- If the key `P idem:<ikey>` (hash: `id`, `out` once complete, `ret`) maps to a
-- request that is pending or has an outcome, returns {'d', id, outcome} or {'p', id};
-- otherwise enqueues the request like enqueue.lua, maps the key to it for `retention`
-- (the request hash gets `ik`, read by complete.lua) and returns {'n', node} ('' when
-- parked).
local now = now_ms()
local id, name, kind, caller, record, actor, parent, attempt, ikey, retention =
  unpack(ARGV, 3, 12)
local ik = P .. 'idem:' .. ikey
local known = redis.call('HMGET', ik, 'id', 'out')
if known[1] then
  if known[2] then
    return {'d', known[1], known[2]}
  end
  -- Pending, or ended without an outcome (expired while parked, drained): then the
  -- key is free.
  if redis.call('EXISTS', P .. 'req:' .. known[1]) == 1 then
    return {'p', known[1]}
  end
end
local key = P .. 'req:' .. id
if redis.call('EXISTS', key) == 1 then
  invariant('request ' .. id .. ' already exists')
end
local seq = store_request(id, name, kind, caller, record, actor)
redis.call('HSET', key, 'attempt', attempt, 'ik', ik)
if parent ~= '' then
  redis.call('HSET', key, 'parent', parent)
  if kind ~= TELL then
    redis.call('SADD', P .. 'kids:' .. parent, id)
  end
end
redis.call('DEL', ik)
redis.call('HSET', ik, 'id', id, 'ret', retention)
redis.call('PEXPIRE', ik, retention)
return {'n', route(id, name, seq, record, now, actor) or ''}
