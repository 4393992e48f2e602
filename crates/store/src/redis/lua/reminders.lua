-- Actor reminders: reminders(op, ...): ARGV[3] = op. A reminder of actor `a` (encoded
-- reference, self-delimiting) with id `r` is the hash `rem:<a><r>`; the set `rems:<a>`
-- holds the ids of the actor's reminders; the zset `due` holds every `<a><r>` of the
-- application scored by target time (Unix ms), so firing looks only at what is due.
-- Hash fields: t, i (actor type and id), r, path, due, text ('' once advanced), period
-- (ns), data, gen (from the counter `rseq`, new at every schedule: the compare-and-set
-- token of `fire`). Numbers travel as strings: no Lua arithmetic on them.
--   schedule a r t i path due text period data -> 1 if it replaced one, else 0
--   get a r                                    -> record or nil
--   all a                                      -> {record, ...}
--   list                                       -> {record, ...} of the whole application
--   cancel a r                                 -> 1 if it existed, else 0
--   cancel_all a                               -> number cancelled
--   next_due                                   -> earliest target (string) or nil
--   due now limit                              -> {record, ...} due at `now`, earliest first
--   fire n (a r gen due next id name kind caller record actor){n}
--       -> per firing: 'a:<node>' assigned, 'p' parked, 's' skipped (changed meanwhile)
-- A record is {t, i, r, path, due, text, period, data, gen}.
local op = ARGV[3]
local FIELDS = { 't', 'i', 'r', 'path', 'due', 'text', 'period', 'data', 'gen' }

local function record(key)
  local f = redis.call('HMGET', key, unpack(FIELDS))
  if not f[1] then
    return nil
  end
  return f
end

local function remove(a, r)
  local removed = redis.call('DEL', P .. 'rem:' .. a .. r)
  redis.call('SREM', P .. 'rems:' .. a, r)
  redis.call('ZREM', P .. 'due', a .. r)
  return removed
end

if op == 'schedule' then
  local a, r = ARGV[4], ARGV[5]
  local key = P .. 'rem:' .. a .. r
  local replaced = redis.call('EXISTS', key)
  redis.call('DEL', key)
  redis.call('HSET', key, 't', ARGV[6], 'i', ARGV[7], 'r', r, 'path', ARGV[8], 'due', ARGV[9],
    'text', ARGV[10], 'period', ARGV[11], 'data', ARGV[12], 'gen', redis.call('INCR', P .. 'rseq'))
  redis.call('SADD', P .. 'rems:' .. a, r)
  redis.call('ZADD', P .. 'due', ARGV[9], a .. r)
  return replaced
elseif op == 'get' then
  return record(P .. 'rem:' .. ARGV[4] .. ARGV[5])
elseif op == 'all' then
  local out = {}
  for _, r in ipairs(redis.call('SMEMBERS', P .. 'rems:' .. ARGV[4])) do
    local rec = record(P .. 'rem:' .. ARGV[4] .. r)
    if rec then
      out[#out + 1] = rec
    end
  end
  return out
elseif op == 'list' then
  local out = {}
  for _, member in ipairs(redis.call('ZRANGE', P .. 'due', 0, -1)) do
    local rec = record(P .. 'rem:' .. member)
    if rec then
      out[#out + 1] = rec
    end
  end
  return out
elseif op == 'cancel' then
  return remove(ARGV[4], ARGV[5])
elseif op == 'cancel_all' then
  local a, n = ARGV[4], 0
  for _, r in ipairs(redis.call('SMEMBERS', P .. 'rems:' .. a)) do
    n = n + remove(a, r)
  end
  redis.call('DEL', P .. 'rems:' .. a)
  return n
elseif op == 'next_due' then
  local first = redis.call('ZRANGE', P .. 'due', 0, 0, 'WITHSCORES')
  if #first == 0 then
    return nil
  end
  return redis.call('HGET', P .. 'rem:' .. first[1], 'due')
elseif op == 'due' then
  local out = {}
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', P .. 'due', '-inf', ARGV[4], 'LIMIT', 0, ARGV[5])) do
    local rec = record(P .. 'rem:' .. member)
    if rec then
      out[#out + 1] = rec
    end
  end
  return out
elseif op == 'fire' then
  local now = now_ms()
  local out = {}
  local i = 5
  for _ = 1, tonumber(ARGV[4]) do
    local a, r, gen, due, nxt = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    local id, name, kind, caller, rec, actor =
      ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], ARGV[i + 9], ARGV[i + 10]
    i = i + 11
    local key = P .. 'rem:' .. a .. r
    local f = redis.call('HMGET', key, 'gen', 'due')
    if f[1] ~= gen or f[2] ~= due or redis.call('EXISTS', P .. 'req:' .. id) == 1 then
      -- Replaced, cancelled or already fired by another member since it was read.
      out[#out + 1] = 's'
    else
      local seq = redis.call('INCR', P .. 'seq')
      redis.call('HSET', P .. 'req:' .. id, 'name', name, 'kind', kind, 'caller', caller, 'seq', seq,
        'rec', rec, 'actor', actor)
      local target = route(id, name, seq, rec, now, actor)
      if target then
        out[#out + 1] = 'a:' .. target
      else
        out[#out + 1] = 'p'
      end
      if nxt == '' then
        remove(a, r)
      else
        redis.call('HSET', key, 'due', nxt, 'text', '')
        redis.call('ZADD', P .. 'due', nxt, a .. r)
      end
    end
  end
  return out
end
return redis.error_reply('ERR unknown reminders operation ' .. tostring(op))
