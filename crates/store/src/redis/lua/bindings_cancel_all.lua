-- bindings_cancel_all(kind, a): ARGV[3..]. Removes actor `a`'s bindings of the kind;
-- returns how many there were.
local kind, a = binding_kind(ARGV[3]), ARGV[4]
local n = 0
for _, b in ipairs(redis.call('SMEMBERS', P .. kind.ids .. a)) do
  n = n + binding_remove(kind, a, b)
end
redis.call('DEL', P .. kind.ids .. a)
return n
