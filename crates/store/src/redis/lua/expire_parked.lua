-- expire_parked(id): ARGV[3]. 1 if the parked request was removed, 0 otherwise. A held
-- parent whose last unfinished child it was is routed.
local id = ARGV[3]
local key = P .. 'req:' .. id
local f = redis.call('HMGET', key, 'status', 'name', 'kind', 'parent')
if f[1] ~= PARKED then
  return 0
end
redis.call('DEL', key)
unlist(id)
redis.call('ZREM', P .. 'parked:' .. f[2], id)
child_finished(id, f[3], f[4], now_ms())
return 1
