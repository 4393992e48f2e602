-- drain(requests, inboxes): ARGV[3] is the glob matching the application's request
-- records (`P req:*`), ARGV[4] the glob matching its inboxes (`P inbox:*`). Deletes every
-- request that is not done (queued, parked, held, paused) with its bookkeeping: its
-- entry in `assigned:<node>` or `parked:<name>`, its `kids:` set, its entry in its
-- parent's `kids:` set, and its Execute entries in every inbox. Done records (outcomes
-- awaiting collection), state, placements, bindings and members stay. One script, SCAN
-- inside it, like purge: atomic. Returns the number of requests deleted.
local drained, count = {}, 0
local cursor = '0'
repeat
  local reply = redis.call('SCAN', cursor, 'MATCH', ARGV[3], 'COUNT', 1000)
  cursor = reply[1]
  for _, key in ipairs(reply[2]) do
    if redis.call('TYPE', key)['ok'] == 'hash' then
      local f = redis.call('HMGET', key, 'status', 'name', 'assignee', 'parent')
      if f[1] and f[1] ~= DONE then
        local id = string.sub(key, #P + 5)
        redis.call('DEL', key, P .. 'kids:' .. id)
        if f[3] and f[3] ~= '' then
          redis.call('ZREM', P .. 'assigned:' .. f[3], id)
        end
        if f[2] then
          redis.call('ZREM', P .. 'parked:' .. f[2], id)
        end
        if f[4] and f[4] ~= '' then
          redis.call('SREM', P .. 'kids:' .. f[4], id)
        end
        unlist(id)
        drained[id] = true
        count = count + 1
      end
    end
  end
until cursor == '0'
if count == 0 then
  return 0
end
cursor = '0'
repeat
  local reply = redis.call('SCAN', cursor, 'MATCH', ARGV[4], 'COUNT', 1000)
  cursor = reply[1]
  for _, stream in ipairs(reply[2]) do
    for _, entry in ipairs(redis.call('XRANGE', stream, '-', '+')) do
      local fields, t, i = entry[2], nil, nil
      for k = 1, #fields, 2 do
        if fields[k] == 't' then
          t = fields[k + 1]
        elseif fields[k] == 'i' then
          i = fields[k + 1]
        end
      end
      if t == 'e' and i and drained[i] then
        redis.call('XDEL', stream, entry[1])
      end
    end
  end
until cursor == '0'
return count
