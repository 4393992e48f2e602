-- remove_actor(actor): ARGV[3] (encoded reference). Deletes its placement and state.
local actor = ARGV[3]
local node = redis.call('HGET', P .. 'place', actor)
if node then
  redis.call('HDEL', P .. 'place', actor)
  redis.call('SREM', P .. 'placed:' .. node, actor)
end
state_clear(actor)
return 1
