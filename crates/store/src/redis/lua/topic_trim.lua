-- topic_trim(app, position, retention, max): ARGV[1..4]. Records `position` (the
-- lowest position of the application's subscriptions to the topic; '' = it has
-- none) as what `app` still needs, then deletes up to `max` of the oldest events
-- that every reader application passed and that were appended at least `retention`
-- ms ago, raising `floor`. Returns how many it deleted.
local app, position, retention, max = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if position == '' then
  redis.call('HDEL', READERS, app)
else
  redis.call('HSET', READERS, app, position)
end
local f = redis.call('HMGET', META, 'last', 'floor')
local last, floor = tonumber(f[1] or '0'), tonumber(f[2] or '0')
local limit = last
for _, p in ipairs(redis.call('HVALS', READERS)) do
  limit = math.min(limit, tonumber(p))
end
local cutoff = now_ms() - retention
local deleted = 0
while deleted < max and floor < limit do
  local at = tonumber(redis.call('HGET', AT, floor + 1) or '0')
  if at > cutoff then
    break
  end
  floor = floor + 1
  redis.call('HDEL', LOG, floor)
  redis.call('HDEL', AT, floor)
  deleted = deleted + 1
end
if deleted > 0 then
  redis.call('HSET', META, 'floor', floor)
end
return deleted
