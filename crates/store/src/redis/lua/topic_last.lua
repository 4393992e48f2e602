-- topic_last(): the newest offset (0 if none); read only.
return tonumber(redis.call('HGET', META, 'last') or '0')
