-- Actor state: state(op, actor, ...): ARGV[3] = op, ARGV[4] = encoded actor reference.
--   get key has_sub sub           -> value or nil
--   set key has_sub sub value     -> 1 if created, 0 if replaced
--   remove key has_sub sub        -> 1 if removed
--   get_all                       -> {flat pairs, {key, {sub, value, ...}}, ...}
--   remove_all                    -> number of entries removed
--   update n_rem keys.. n_subrem (key n subs..).. n_upd (key value).. n_subupd (key n (sub value)..)..
--                                 -> {removed, added}
--   entries key                   -> {sub, value, ...} in insertion order
--   clear key                     -> number of entries removed
local op, actor = ARGV[3], ARGV[4]

if op == 'get' then
  if ARGV[6] == '1' then
    return redis.call('HGET', P .. 'sm:' .. actor .. ARGV[5], ARGV[7])
  end
  return redis.call('HGET', P .. 'sf:' .. actor, ARGV[5])
elseif op == 'set' then
  if ARGV[6] == '1' then
    return submap_set(actor, ARGV[5], ARGV[7], ARGV[8])
  end
  return redis.call('HSET', P .. 'sf:' .. actor, ARGV[5], ARGV[8])
elseif op == 'remove' then
  if ARGV[6] == '1' then
    return submap_remove(actor, ARGV[5], ARGV[7])
  end
  return redis.call('HDEL', P .. 'sf:' .. actor, ARGV[5])
elseif op == 'get_all' then
  local out = { redis.call('HGETALL', P .. 'sf:' .. actor) }
  for _, key in ipairs(redis.call('SMEMBERS', P .. 'smk:' .. actor)) do
    out[#out + 1] = { key, submap_entries(actor, key) }
  end
  return out
elseif op == 'remove_all' then
  return state_clear(actor)
elseif op == 'update' then
  local i, removed, added = 5, 0, 0
  local function nextarg()
    local v = ARGV[i]
    i = i + 1
    return v
  end
  for _ = 1, tonumber(nextarg()) do
    removed = removed + redis.call('HDEL', P .. 'sf:' .. actor, nextarg())
  end
  for _ = 1, tonumber(nextarg()) do
    local key = nextarg()
    for _ = 1, tonumber(nextarg()) do
      removed = removed + submap_remove(actor, key, nextarg())
    end
  end
  for _ = 1, tonumber(nextarg()) do
    local key = nextarg()
    added = added + redis.call('HSET', P .. 'sf:' .. actor, key, nextarg())
  end
  for _ = 1, tonumber(nextarg()) do
    local key = nextarg()
    for _ = 1, tonumber(nextarg()) do
      local sub = nextarg()
      added = added + submap_set(actor, key, sub, nextarg())
    end
  end
  return { removed, added }
elseif op == 'entries' then
  return submap_entries(actor, ARGV[5])
elseif op == 'clear' then
  return submap_clear(actor, ARGV[5])
end
return redis.error_reply('ERR unknown state operation ' .. tostring(op))
