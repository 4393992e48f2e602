-- deliver_event: ARGV[3..]
--   a, s     encoded actor, subscription id
--   pos      the subscription's position as read (the compare-and-set)
--   offset   the offset of the event delivered (the next position)
--   id, name, kind, caller, record, actor   the delivery request (enqueue_at)
-- Returns 'g' gone, 'b' previous delivery unfinished, 's' moved meanwhile (delivered
-- by another member, or replaced), 'a:<node>' assigned, 'p' parked.
local a, s, pos, offset, id = unpack(ARGV, 3, 7)
local key = P .. BINDINGS.subscription.hash .. a .. s
local f = redis.call('HMGET', key, 'pos', 'inflight')
if not f[1] then
  return 'g'
end
if unfinished(f[2]) then
  return 'b'
end
if f[1] ~= pos then
  return 's'
end
local routed = enqueue_at(7, now_ms())
if not routed then
  return 's'
end
redis.call('HSET', key, 'pos', offset, 'inflight', id)
return routed
