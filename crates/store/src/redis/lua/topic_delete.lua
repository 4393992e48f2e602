-- topic_delete(): 1 existed, 0 not. Its events are deleted; offsets keep growing.
local existed = redis.call('HGET', META, 'live') == '1'
redis.call('HSET', META, 'live', '0', 'floor', redis.call('HGET', META, 'last') or '0')
redis.call('DEL', LOG, AT)
if existed then
  return 1
end
return 0
