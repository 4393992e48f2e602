-- pause(id, abandon): ARGV[3..]. An operator pauses pending request `id`: a queued one
-- is withdrawn from its assignee (which gets `abandon`, a postcard Signal::Abandon), a
-- parked one from its index; then status PAUSED, no assignee, in no index or inbox
-- (only resume.lua routes it again; it stays in `live`). Returns {'x', assignee or
-- ''}, {'u'} (unknown), {'c'} (done already) or {'p'} (paused already).
local id, abandon = ARGV[3], ARGV[4]
local r = pending_fields(id)
if not r then
  return {'u'}
end
if r.status == DONE then
  return {'c'}
end
if r.status == PAUSED then
  return {'p'}
end
withdraw(id, r, abandon, now_ms())
local key = P .. 'req:' .. id
redis.call('HSET', key, 'status', PAUSED)
redis.call('HDEL', key, 'assignee')
local assignee = ''
if r.status == QUEUED then
  assignee = r.assignee
end
return {'x', assignee}
