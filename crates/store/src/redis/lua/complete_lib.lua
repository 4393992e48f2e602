-- The completion of one request (complete.lua, complete_all.lua).
-- complete_one(node, id, outcome, now): the fence is `node` (a member whose lease is
-- gone is fenced before this runs).
-- 0: unknown, already complete, or not queued on `node` (a stale attempt); 1: done.
local function complete_one(node, id, outcome, now)
  local key = P .. 'req:' .. id
  local f = redis.call('HMGET', key, 'status', 'kind', 'caller', 'assignee', 'parent', 'ik')
  local status, kind, caller, assignee, parent, ik = f[1], f[2], f[3], f[4], f[5], f[6]
  if status ~= QUEUED or assignee ~= node then
    return 0
  end
  -- A keyed request (enqueue_keyed.lua): its outcome stays with the key, which lives
  -- for its retention from now, if the key (not expired) still maps to it.
  if ik and redis.call('HGET', ik, 'id') == id then
    redis.call('HSET', ik, 'out', outcome)
    redis.call('PEXPIRE', ik, redis.call('HGET', ik, 'ret'))
  end
  redis.call('ZREM', P .. 'assigned:' .. node, id)
  unlist(id)
  if kind ~= TELL and live(caller, now) then
    redis.call('HSET', key, 'status', DONE, 'outcome', outcome)
    redis.call('HDEL', key, 'assignee', 'rec', 'attempt')
    redis.call('SADD', P .. 'done:' .. caller, id)
    redis.call('XADD', P .. 'inbox:' .. caller, '*', 't', 'c', 'i', id, 'k', kind, 'p', outcome)
  else
    -- A tell, or a caller that is dead (its recovery drops what it could not collect):
    -- the request is finished and nobody will collect the outcome.
    redis.call('DEL', key)
  end
  child_finished(id, kind, parent, now)
  return 1
end
