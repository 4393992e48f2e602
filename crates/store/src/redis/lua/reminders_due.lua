-- reminders_due(now, limit): ARGV[3..]; read only. The records of the reminders due at
-- `now` (Unix ms), earliest first, at most `limit`.
local now, limit = ARGV[3], ARGV[4]
return binding_records(BINDINGS.reminder,
  redis.call('ZRANGEBYSCORE', P .. 'due', '-inf', now, 'LIMIT', 0, limit))
