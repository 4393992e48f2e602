-- reminders_pending(bound): ARGV[3]. How many reminder firings are pending (the zset
-- `firing`, filled by reminders_fire, emptied by `unlist` when a request finishes or
-- goes), at most `bound`. The oldest few entries are checked first and dropped if
-- their request is no longer queued, parked or held (paused by an operator, or gone
-- by a path that missed `unlist`): a stale entry never holds firing back for good.
local bound = tonumber(ARGV[3])
local key = P .. 'firing'
for _, id in ipairs(redis.call('ZRANGE', key, 0, 15)) do
  local status = redis.call('HGET', P .. 'req:' .. id, 'status')
  if status ~= QUEUED and status ~= PARKED and status ~= HELD then
    redis.call('ZREM', key, id)
  end
end
return math.min(redis.call('ZCARD', key), bound)
