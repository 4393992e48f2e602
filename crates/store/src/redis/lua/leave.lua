-- leave(node): ARGV[3]. Ends the member's lease now (it is dead from here on: nothing
-- is routed to it, its transitions are fenced); the client then recovers it like a
-- dead member (recover.lua). 1 if it was a member, 0 otherwise.
local node = ARGV[3]
if redis.call('HEXISTS', P .. 'members', node) == 0 then
  redis.call('ZREM', P .. 'leases', node)
  return 0
end
redis.call('ZADD', P .. 'leases', 0, node)
return 1
