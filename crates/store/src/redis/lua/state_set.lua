-- state_set(actor, key, has_sub, sub, value): ARGV[3..]. Sets entry `key` of the actor
-- (or subkey `sub` of its submap `key` when has_sub is '1'). 1 if created, 0 if replaced.
local actor, key, has_sub, sub, value = unpack(ARGV, 3, 7)
if has_sub == '1' then
  return submap_set(actor, key, sub, value)
end
return redis.call('HSET', P .. 'sf:' .. actor, key, value)
