-- renew(node, lease_ms): ARGV[3..]
-- Extends the lease of a live member. Returns {1, expired...}: the members whose
-- leases expired and that still await (the end of) their recovery, which the client
-- then runs (recover.lua); or {0} when the member's own lease had expired (it must
-- fence itself; the others recover it).
local now = now_ms()
local node, lease = ARGV[3], tonumber(ARGV[4])
if not live(node, now) then
  return { 0 }
end
redis.call('ZADD', P .. 'leases', now + lease, node)
local out = { 1 }
for _, dead in ipairs(redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now, 'LIMIT', 0, 64)) do
  out[#out + 1] = dead
end
return out
