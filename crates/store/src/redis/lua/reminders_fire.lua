-- reminders_fire: ARGV[3] = n, then n firings of 11 arguments each:
--   a, r     encoded actor, reminder id
--   gen, due generation and target time as read (reminders_due): the compare-and-set
--   next     next target time ('' for none: the reminder goes)
--   id, name, kind, caller, record, actor   the firing request (enqueue_at)
-- For each firing whose reminder is unchanged since it was read, enqueues the request
-- (listed in `firing`, the pending firings: reminders_pending) and advances (or
-- removes) the reminder. Returns per firing 'a:<node>' assigned,
-- 'p' parked, 's' skipped (replaced, cancelled or fired by another member meanwhile).
local kind = BINDINGS.reminder
local now = now_ms()
local out = {}
local i = 4
for _ = 1, tonumber(ARGV[3]) do
  local a, r, gen, due, nxt = unpack(ARGV, i, i + 4)
  local key = P .. kind.hash .. a .. r
  local f = redis.call('HMGET', key, 'gen', 'due')
  local routed = nil
  if f[1] == gen and f[2] == due then
    routed = enqueue_at(i + 5, now)
  end
  if not routed then
    out[#out + 1] = 's'
  else
    out[#out + 1] = routed
    redis.call('ZADD', P .. 'firing', now, ARGV[i + 5])
    if nxt == '' then
      binding_remove(kind, a, r)
    else
      redis.call('HSET', key, 'due', nxt, 'text', '')
      redis.call('ZADD', P .. 'due', nxt, a .. r)
    end
  end
  i = i + 11
end
return out
