-- request_get(id): ARGV[3]. Read only. Pending request `id` and its unfinished calls
-- and promises (the set `kids:<id>`): {entries...} of six values each (pending_entry),
-- the request first; {} if it is not pending.
local id = ARGV[3]
local r = pending_fields(id)
local out = {}
if not r or r.status == DONE then
  return out
end
pending_entry(out, id, r)
local kids = {}
for _, kid in ipairs(redis.call('SMEMBERS', P .. 'kids:' .. id)) do
  local k = pending_fields(kid)
  if k and k.status ~= DONE then
    kids[#kids + 1] = { id = kid, r = k }
  end
end
table.sort(kids, function(x, y) return tonumber(x.r.seq) < tonumber(y.r.seq) end)
for _, kid in ipairs(kids) do
  pending_entry(out, kid.id, kid.r)
end
return out
