-- kill(id, outcome, abandon): ARGV[3..]. An operator's completion of pending request
-- `id` with `outcome` (postcard Outcome::Failed(KILLED)), whatever its status and
-- assignee: withdrawn from its assignee (which gets `abandon`, a postcard
-- Signal::Abandon) or its parked index, then finished like complete.lua does (done
-- with the outcome for a live caller that waits for it, else deleted), releasing a
-- held parent. Returns {'k', assignee or ''}, {'u'} (unknown) or {'c'} (done already).
local now = now_ms()
local id, outcome, abandon = ARGV[3], ARGV[4], ARGV[5]
local key = P .. 'req:' .. id
local r = pending_fields(id)
if not r then
  return {'u'}
end
if r.status == DONE then
  return {'c'}
end
withdraw(id, r, abandon, now)
unlist(id)
-- A duplicate under the request's idempotency key gets the killed reply (as complete.lua).
local ik = redis.call('HGET', key, 'ik')
if ik and redis.call('HGET', ik, 'id') == id then
  redis.call('HSET', ik, 'out', outcome)
  redis.call('PEXPIRE', ik, redis.call('HGET', ik, 'ret'))
end
if r.kind ~= TELL and live(r.caller, now) then
  redis.call('HSET', key, 'status', DONE, 'outcome', outcome)
  redis.call('HDEL', key, 'assignee', 'rec', 'attempt')
  redis.call('SADD', P .. 'done:' .. r.caller, id)
  redis.call('XADD', P .. 'inbox:' .. r.caller, '*', 't', 'c', 'i', id, 'k', r.kind, 'p', outcome)
else
  redis.call('DEL', key)
end
child_finished(id, r.kind, r.parent, now)
local assignee = ''
if r.status == QUEUED then
  assignee = r.assignee
end
return {'k', assignee}
