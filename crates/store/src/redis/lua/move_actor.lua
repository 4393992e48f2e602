-- move_actor(from, actor, to): ARGV[3..]; the fence is `from` (a member whose lease is
-- gone is fenced before this runs). Moves the placement of `actor` (encoded reference)
-- off `from` if it is placed there and no request of it is queued there (scanning
-- `assigned:<from>`, the requests queued on `from`: a few while it serves): to `to`
-- if that is a live member offering `type`, else the placement is dropped.
-- 1: moved; 0: not placed on `from`, or a request of it is queued there.
local now = now_ms()
local from, actor, to, actor_type = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('HGET', P .. 'place', actor) ~= from then
  return 0
end
for _, id in ipairs(redis.call('ZRANGE', P .. 'assigned:' .. from, 0, -1)) do
  if redis.call('HGET', P .. 'req:' .. id, 'actor') == actor then
    return 0
  end
end
if to ~= '' and live(to, now) and redis.call('ZSCORE', P .. 'route:' .. actor_type, to) then
  place(actor, to)
else
  redis.call('HDEL', P .. 'place', actor)
  redis.call('SREM', P .. 'placed:' .. from, actor)
end
return 1
