-- topic_publish(event): ARGV[1]. The offset of the event (creates the topic if needed).
local offset = redis.call('HINCRBY', META, 'last', 1)
redis.call('HSET', META, 'live', '1')
redis.call('HSET', LOG, offset, ARGV[1])
return offset
