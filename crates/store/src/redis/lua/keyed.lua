-- keyed(ikey): ARGV[3] (see enqueue_keyed.lua). Read only: {id, outcome} when the key
-- has an outcome, {id} when its request is pending, {} otherwise.
local ik = P .. 'idem:' .. ARGV[3]
local known = redis.call('HMGET', ik, 'id', 'out')
if not known[1] then
  return {}
end
if known[2] then
  return {known[1], known[2]}
end
if redis.call('EXISTS', P .. 'req:' .. known[1]) == 1 then
  return {known[1]}
end
return {}
