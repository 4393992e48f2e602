-- topic_next(position): ARGV[1]; read only. {offset, event} of the first event after
-- `position`, or nil. Events are deleted from the oldest on (topic deletion,
-- trimming), raising `floor`: every offset in (floor, last] is present.
local f = redis.call('HMGET', META, 'last', 'floor')
local last, floor = tonumber(f[1] or '0'), tonumber(f[2] or '0')
local offset = math.max(tonumber(ARGV[1]), floor) + 1
if offset > last then
  return nil
end
return { offset, redis.call('HGET', LOG, offset) }
