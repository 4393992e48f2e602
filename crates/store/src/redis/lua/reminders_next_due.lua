-- reminders_next_due(): read only. The earliest target time (string), or nil.
local first = redis.call('ZRANGE', P .. 'due', 0, 0)
if #first == 0 then
  return nil
end
return redis.call('HGET', P .. 'rem:' .. first[1], 'due')
