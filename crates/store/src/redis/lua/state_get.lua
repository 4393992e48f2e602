-- state_get(actor, key, has_sub, sub): ARGV[3..]; read only. The value of entry `key`
-- of the actor (encoded reference), or of subkey `sub` of its submap `key` when
-- has_sub is '1'; nil if there is none.
local actor, key, has_sub, sub = unpack(ARGV, 3, 6)
if has_sub == '1' then
  return redis.call('HGET', P .. 'sm:' .. actor .. key, sub)
end
return redis.call('HGET', P .. 'sf:' .. actor, key)
