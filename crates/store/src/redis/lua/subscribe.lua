-- subscribe: ARGV[3..] (layout: bindings.lua)
--   a        encoded actor
--   s        subscription id
--   t, i     actor type, actor id
--   path
--   topic
--   ct       content type
--   group
--   oldest   '1' from the oldest event, '0' from the newest
--   start    the position to start from (offset of the last event not to deliver)
-- Returns 1 if it replaced a subscription, else 0.
local a, s, t, i, path, topic, ct, group, oldest, start = unpack(ARGV, 3, 12)
local kind = BINDINGS.subscription
local key = P .. kind.hash .. a .. s
local old = redis.call('HMGET', key, 'topic', 'group')
local replaced = 0
if old[1] then
  replaced = 1
end
redis.call('HSET', key, 't', t, 'i', i, 's', s, 'path', path, 'ct', ct, 'oldest', oldest)
if not (old[1] == topic and old[2] == group) then
  -- New, or another topic or group: start afresh (a delivery in flight is kept, so
  -- the next one still waits for it).
  redis.call('HSET', key, 'topic', topic, 'group', group, 'pos', start)
  if not old[1] then
    redis.call('HSET', key, 'inflight', '')
  end
end
binding_index(kind, a, s)
return replaced
