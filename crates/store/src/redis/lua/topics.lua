-- Topics (global, outside every application's hash tag; NOT prefixed with lib.lua).
-- KEYS[1] = "kar:topic:{<tag>}:meta" (hash: last = newest offset ever published,
-- floor = offsets at or below it were deleted, live = '1' while the topic exists),
-- KEYS[2] = "kar:topic:{<tag>}:log" (hash: offset -> event). ARGV[1] = op.
--   create            -> 1 created, 0 existed
--   delete            -> 1 existed, 0 not (events deleted; offsets keep growing)
--   publish event     -> offset of the event (creates the topic if needed)
--   last              -> newest offset (0 if none)
--   next position     -> {offset, event} of the first event after position, or nil
local meta, log, op = KEYS[1], KEYS[2], ARGV[1]
if op == 'create' then
  if redis.call('HGET', meta, 'live') == '1' then
    return 0
  end
  redis.call('HSET', meta, 'live', '1')
  return 1
elseif op == 'delete' then
  local existed = redis.call('HGET', meta, 'live') == '1'
  redis.call('HSET', meta, 'live', '0', 'floor', redis.call('HGET', meta, 'last') or '0')
  redis.call('DEL', log)
  if existed then
    return 1
  end
  return 0
elseif op == 'publish' then
  local offset = redis.call('HINCRBY', meta, 'last', 1)
  redis.call('HSET', meta, 'live', '1')
  redis.call('HSET', log, offset, ARGV[2])
  return offset
elseif op == 'last' then
  return tonumber(redis.call('HGET', meta, 'last') or '0')
elseif op == 'next' then
  -- Events are only ever deleted all at once (topic deletion): every offset in
  -- (floor, last] is present.
  local f = redis.call('HMGET', meta, 'last', 'floor')
  local last, floor = tonumber(f[1] or '0'), tonumber(f[2] or '0')
  local offset = math.max(tonumber(ARGV[2]), floor) + 1
  if offset > last then
    return nil
  end
  return { offset, redis.call('HGET', log, offset) }
end
return redis.error_reply('ERR unknown topics operation ' .. tostring(op))
