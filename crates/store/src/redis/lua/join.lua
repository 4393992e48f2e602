-- join(node, lease_ms, margin_ms, member record, names...): ARGV[3..]
-- Registers the member with a fresh lease, its fencing margin (see `margin_of`) and its
-- routes, and tells every other member. The requests parked for its names are adopted
-- afterwards, in batches (adopt.lua): one script adopting a backlog of 100,000 ran for
-- seconds, during which Redis served nobody and every member missed its lease.
-- Members whose leases expired are recovered by the renewals of the live ones
-- (recover.lua), not here.
local now = now_ms()
local node, lease, margin, record = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
if redis.call('HEXISTS', P .. 'members', node) == 1 and not live(node, now) then
  return redis.error_reply('ERR node ' .. node .. ' is dead and being recovered: join with a new node id')
end
redis.call('HSET', P .. 'members', node, record)
redis.call('ZADD', P .. 'leases', now + lease, node)
redis.call('HSET', P .. 'margins', node, margin)
for i = 7, #ARGV do
  local name = ARGV[i]
  redis.call('SADD', P .. 'names:' .. node, name)
  redis.call('ZADD', P .. 'route:' .. name, 0, node)
end
push_members_changed(node, now)
return 1
