-- bindings_all(kind): ARGV[3]; read only. The records of every binding of the kind in
-- the application.
local kind = binding_kind(ARGV[3])
if kind.sorted then
  return binding_records(kind, redis.call('ZRANGE', P .. kind.index, 0, -1))
end
return binding_records(kind, redis.call('SMEMBERS', P .. kind.index))
