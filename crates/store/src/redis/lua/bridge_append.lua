-- bridge_append(source, partition, node, lease, from, next, events...): ARGV[1..].
-- If `node` owns the bridge of the source partition under a running lease and its
-- next offset is `from` ('' = never set), appends the events in order, sets the
-- next offset to `next` and renews the lease: returns 1. Otherwise changes nothing
-- and returns 0 (taken over, or appended meanwhile).
local id = ARGV[1] .. '|' .. ARGV[2]
local node, lease, from, nxt = ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local f = redis.call('HMGET', BRIDGES, 'o|' .. id, 'e|' .. id, 'n|' .. id)
local now = now_ms()
if f[1] ~= node or tonumber(f[2]) <= now or (f[3] or '') ~= from then
  return 0
end
for i = 7, #ARGV do
  append(ARGV[i], now)
end
redis.call('HSET', BRIDGES, 'n|' .. id, nxt, 'e|' .. id, now + lease)
return 1
