-- forget(ids...): ARGV[3..]. Deletes the records of completed requests.
for i = 3, #ARGV do
  local key = P .. 'req:' .. ARGV[i]
  local f = redis.call('HMGET', key, 'status', 'caller')
  if f[1] == DONE then
    redis.call('DEL', key)
    redis.call('SREM', P .. 'done:' .. f[2], ARGV[i])
  end
end
return 1
