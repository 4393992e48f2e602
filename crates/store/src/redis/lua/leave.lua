-- leave(node, unstarted...): ARGV[3..]. Ends the member's lease now (it is dead from
-- here on: nothing is routed to it, its transitions are fenced); the client then
-- recovers it like a dead member (recover.lua). The requests of `unstarted` (it never
-- handed them to its component) are kept in `released:<node>` so that whichever member
-- recovers it, the leaving one or a live one whose renewal got there first, re-delivers
-- them without charging an attempt. 1 if it was a member, 0 otherwise.
local node = ARGV[3]
if redis.call('HEXISTS', P .. 'members', node) == 0 then
  redis.call('ZREM', P .. 'leases', node)
  return 0
end
for i = 4, #ARGV do
  redis.call('SADD', P .. 'released:' .. node, ARGV[i])
end
redis.call('ZADD', P .. 'leases', 0, node)
return 1
