-- state_get_all(actor): ARGV[3]; read only.
-- Returns {flat pairs, {key, {sub, value, ...}}, ...} (submaps in insertion order).
local actor = ARGV[3]
local out = { redis.call('HGETALL', P .. 'sf:' .. actor) }
for _, key in ipairs(redis.call('SMEMBERS', P .. 'smk:' .. actor)) do
  out[#out + 1] = { key, submap_entries(actor, key) }
end
return out
