-- Event subscriptions: events(op, ...): ARGV[3] = op. Subscription `s` of actor `a`
-- (encoded reference, self-delimiting) is the hash `sub:<a><s>`; the set `subs:<a>`
-- holds the actor's subscription ids, the set `allsubs` every `<a><s>` of the
-- application. Hash fields: t, i, s, path, topic, ct, group, oldest ('1'/'0'),
-- pos (offset of the last event delivered), inflight (id of the request delivering
-- it, '' once none).
--   subscribe a s t i path topic ct group oldest start -> 1 if it replaced one, else 0
--   get a s                                            -> record or nil
--   all a                                              -> {record, ...}
--   list                                               -> every record of the application
--   cancel a s                                         -> 1 if it existed, else 0
--   cancel_all a                                       -> number cancelled
--   deliver a s pos offset id name kind caller record actor
--       -> 'g' gone, 'b' previous delivery unfinished, 's' moved meanwhile,
--          'a:<node>' assigned, 'p' parked
-- A record is {t, i, s, path, topic, ct, group, oldest, pos, busy ('1'/'0')}.
local op = ARGV[3]
local FIELDS = { 't', 'i', 's', 'path', 'topic', 'ct', 'group', 'oldest', 'pos', 'inflight' }

-- Whether request `id` (a delivery) is still unfinished: a tell's record goes when it
-- completes or expires parked.
local function unfinished(id)
  if not id or id == '' then
    return false
  end
  local status = redis.call('HGET', P .. 'req:' .. id, 'status')
  return status ~= false and status ~= 'd'
end

local function record(key)
  local f = redis.call('HMGET', key, unpack(FIELDS))
  if not f[1] then
    return nil
  end
  if unfinished(f[10]) then
    f[10] = '1'
  else
    f[10] = '0'
  end
  return f
end

local function remove(a, s)
  local removed = redis.call('DEL', P .. 'sub:' .. a .. s)
  redis.call('SREM', P .. 'subs:' .. a, s)
  redis.call('SREM', P .. 'allsubs', a .. s)
  return removed
end

if op == 'subscribe' then
  local a, s = ARGV[4], ARGV[5]
  local key = P .. 'sub:' .. a .. s
  local old = redis.call('HMGET', key, 'topic', 'group')
  local replaced = 0
  if old[1] then
    replaced = 1
  end
  redis.call('HSET', key, 't', ARGV[6], 'i', ARGV[7], 's', s, 'path', ARGV[8], 'ct', ARGV[10],
    'oldest', ARGV[12])
  if not (old[1] == ARGV[9] and old[2] == ARGV[11]) then
    -- New, or another topic or group: start afresh (a delivery in flight is kept, so
    -- the next one still waits for it).
    redis.call('HSET', key, 'topic', ARGV[9], 'group', ARGV[11], 'pos', ARGV[13])
    if not old[1] then
      redis.call('HSET', key, 'inflight', '')
    end
  end
  redis.call('SADD', P .. 'subs:' .. a, s)
  redis.call('SADD', P .. 'allsubs', a .. s)
  return replaced
elseif op == 'get' then
  return record(P .. 'sub:' .. ARGV[4] .. ARGV[5])
elseif op == 'all' then
  local out = {}
  for _, s in ipairs(redis.call('SMEMBERS', P .. 'subs:' .. ARGV[4])) do
    local rec = record(P .. 'sub:' .. ARGV[4] .. s)
    if rec then
      out[#out + 1] = rec
    end
  end
  return out
elseif op == 'list' then
  local out = {}
  for _, as in ipairs(redis.call('SMEMBERS', P .. 'allsubs')) do
    local rec = record(P .. 'sub:' .. as)
    if rec then
      out[#out + 1] = rec
    end
  end
  return out
elseif op == 'cancel' then
  return remove(ARGV[4], ARGV[5])
elseif op == 'cancel_all' then
  local a, n = ARGV[4], 0
  for _, s in ipairs(redis.call('SMEMBERS', P .. 'subs:' .. a)) do
    n = n + remove(a, s)
  end
  redis.call('DEL', P .. 'subs:' .. a)
  return n
elseif op == 'deliver' then
  local a, s, pos, offset = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
  local id, name, kind, caller, rec, actor = ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13]
  local key = P .. 'sub:' .. a .. s
  local f = redis.call('HMGET', key, 'pos', 'inflight')
  if not f[1] then
    return 'g'
  end
  if unfinished(f[2]) then
    return 'b'
  end
  if f[1] ~= pos or redis.call('EXISTS', P .. 'req:' .. id) == 1 then
    -- Delivered by another member (or replaced) since it was read.
    return 's'
  end
  local seq = redis.call('INCR', P .. 'seq')
  redis.call('HSET', P .. 'req:' .. id, 'name', name, 'kind', kind, 'caller', caller, 'seq', seq,
    'rec', rec, 'actor', actor)
  redis.call('HSET', key, 'pos', offset, 'inflight', id)
  local target = route(id, name, seq, rec, now_ms(), actor)
  if target then
    return 'a:' .. target
  end
  return 'p'
end
return redis.error_reply('ERR unknown events operation ' .. tostring(op))
