-- reminder_schedule: ARGV[3..] (layout: bindings.lua)
--   a       encoded actor
--   r       reminder id
--   t, i    actor type, actor id
--   path
--   due     target time (Unix ms)
--   text    targetTime as given ('' for none)
--   period  ns ('0': one shot)
--   data
--   trace   traceparent of the scheduling call ('' for none: no field)
-- Writes the reminder with a new generation. 1 if it replaced one, else 0.
local a, r, t, i, path, due, text, period, data, trace = unpack(ARGV, 3, 12)
local kind = BINDINGS.reminder
local key = P .. kind.hash .. a .. r
local replaced = redis.call('EXISTS', key)
redis.call('DEL', key)
redis.call('HSET', key, 't', t, 'i', i, 'r', r, 'path', path, 'due', due, 'text', text,
  'period', period, 'data', data, 'gen', redis.call('INCR', P .. 'rseq'))
if trace ~= '' then
  redis.call('HSET', key, 'trace', trace)
end
binding_index(kind, a, r, due)
return replaced
