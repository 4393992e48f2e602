-- leave(node, read_mark, unstarted...): ARGV[3..]. Ends the member's lease now (it is dead from
-- here on: nothing is routed to it, its transitions are fenced); the client then
-- recovers it like a dead member (recover.lua). The requests of `unstarted` (it never
-- handed them to its component) are kept in `released:<node>` so that whichever member
-- recovers it, the leaving one or a live one whose renewal got there first, re-delivers
-- them without charging an attempt; so are the requests in its inbox after
-- `read_mark`, the id of the last entry it read ('': unknown, none): they were routed
-- to it after it listed `unstarted`, and it never saw them. 1 if it was a member, 0
-- otherwise.
local node, read_mark = ARGV[3], ARGV[4]
if redis.call('HEXISTS', P .. 'members', node) == 0 then
  redis.call('ZREM', P .. 'leases', node)
  return 0
end
for i = 5, #ARGV do
  redis.call('SADD', P .. 'released:' .. node, ARGV[i])
end
if read_mark ~= '' then
  for _, entry in ipairs(redis.call('XRANGE', P .. 'inbox:' .. node, '(' .. read_mark, '+')) do
    local fields, kind, id = entry[2], nil, nil
    for f = 1, #fields, 2 do
      if fields[f] == 't' then kind = fields[f + 1] elseif fields[f] == 'i' then id = fields[f + 1] end
    end
    if kind == 'e' and id then
      redis.call('SADD', P .. 'released:' .. node, id)
    end
  end
end
redis.call('ZADD', P .. 'leases', 0, node)
return 1
