-- expire_parked(id): ARGV[3]. 1 if the parked request was removed, 0 otherwise.
local key = P .. 'req:' .. ARGV[3]
local f = redis.call('HMGET', key, 'status', 'name')
if f[1] ~= 'p' then
  return 0
end
redis.call('DEL', key)
redis.call('ZREM', P .. 'parked:' .. f[2], ARGV[3])
return 1
