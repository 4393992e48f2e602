-- reminders_next_due(): read only. When the earliest reminder is due (string, Unix ms):
-- its target, or the end of its claim (reminders_due); nil for none.
local first = redis.call('ZRANGE', P .. 'due', 0, 0, 'WITHSCORES')
if #first == 0 then
  return nil
end
return first[2]
