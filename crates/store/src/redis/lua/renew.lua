-- renew(node, lease_ms): ARGV[3..]
-- Extends the lease of a live member (0: the lease had expired, the member is removed
-- and must fence itself), then sweeps the members whose leases expired.
local now = now_ms()
local node, lease = ARGV[3], tonumber(ARGV[4])
if not live(node, now) then
  remove_member(node, now)
  sweep(now)
  return 0
end
redis.call('ZADD', P .. 'leases', now + lease, node)
sweep(now)
return 1
