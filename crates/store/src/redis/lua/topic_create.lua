-- topic_create(): 1 created, 0 existed.
if redis.call('HGET', META, 'live') == '1' then
  return 0
end
redis.call('HSET', META, 'live', '1')
return 1
