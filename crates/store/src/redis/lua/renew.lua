-- renew(node, lease_ms): ARGV[3..]
-- Extends the lease of a live member. Returns {1, next_expiry_ms, expired...}:
-- `next_expiry_ms` is how long until the earliest lease of another live member expires
-- (-1: no other member), so that the renewing member can look again right then
-- instead of a renewal period later; `expired` lists the members whose leases expired
-- and that still await (the end of) their recovery, which the client then runs
-- (recover.lua). Returns {0} when the member's own lease had expired (it must fence
-- itself; the others recover it).
local now = now_ms()
local node, lease = ARGV[3], tonumber(ARGV[4])
if not live(node, now) then
  return { 0 }
end
redis.call('ZADD', P .. 'leases', now + lease, node)
local next_expiry = -1
local soonest = redis.call('ZRANGEBYSCORE', P .. 'leases', '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 2)
for i = 1, #soonest, 2 do
  if soonest[i] ~= node then
    next_expiry = tonumber(soonest[i + 1]) - now
    break
  end
end
local out = { 1, tostring(next_expiry) }
for _, dead in ipairs(redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now, 'LIMIT', 0, 64)) do
  out[#out + 1] = dead
end
return out
