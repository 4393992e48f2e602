-- resume(id): ARGV[3]. Resumes a request paused by recovery (recover.lua): its attempt
-- count starts afresh, and it is held while calls or promises of its failed attempt are
-- unfinished (routed by the last one's completion), else routed or parked. Returns
-- 'a:<node>' (routed), 'p' (parked), 'h' (held), 'u' (unknown id), 'n' (not paused:
-- nothing changed).
local id = ARGV[3]
local key = P .. 'req:' .. id
local f = redis.call('HMGET', key, 'status', 'name', 'seq', 'rec', 'actor')
if not f[1] then
  return 'u'
end
if f[1] ~= PAUSED then
  return 'n'
end
redis.call('HSET', key, 'attempt', 0)
if has_unfinished_children(id) then
  redis.call('HSET', key, 'status', HELD)
  return 'h'
end
local target = route(id, f[2], f[3], f[4], now_ms(), f[5])
if target then
  return 'a:' .. target
end
return 'p'
