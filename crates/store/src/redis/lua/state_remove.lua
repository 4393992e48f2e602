-- state_remove(actor, key, has_sub, sub): ARGV[3..]. Removes entry `key` of the actor
-- (or subkey `sub` of its submap `key` when has_sub is '1'). 1 if it was there.
local actor, key, has_sub, sub = unpack(ARGV, 3, 6)
if has_sub == '1' then
  return submap_remove(actor, key, sub)
end
return redis.call('HDEL', P .. 'sf:' .. actor, key)
