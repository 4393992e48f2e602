-- bindings_of(kind, a): ARGV[3..]; read only. The records of actor `a`'s bindings.
local kind, a = binding_kind(ARGV[3]), ARGV[4]
local abs = {}
for _, b in ipairs(redis.call('SMEMBERS', P .. kind.ids .. a)) do
  abs[#abs + 1] = a .. b
end
return binding_records(kind, abs)
