-- renew(node, lease_ms): ARGV[3..]
-- Extends the lease of a live member. Returns {1, next_ms, n, recoverable..., parked...}:
-- `next_ms` is how long until the next other member becomes recoverable (its lease
-- ended and then its fencing margin passed: `margin_of`), -1 if none is in sight, so
-- that the renewing member can look again right then instead of a renewal period
-- later; the `n` members of `recoverable` are, and still await (the end of) their
-- recovery, which the client then runs (recover.lua); `parked` lists the names of the
-- member for which requests are parked, which it then adopts (adopt.lua) unless it
-- does already: so an adoption whose member died midway is resumed by the live
-- members offering the names. Returns {0} when the member's own lease had expired (it
-- must fence itself; the others recover it).
local now = now_ms()
local node, lease = ARGV[3], tonumber(ARGV[4])
if not live(node, now) then
  return { 0 }
end
redis.call('ZADD', P .. 'leases', now + lease, node)
local next_ms = -1
local function sooner(ms)
  if next_ms < 0 or ms < next_ms then
    next_ms = ms
  end
end
local out = { 1, '', 0 }
-- Leases that ended: recoverable once their margin passed, else soon.
local ended = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now, 'WITHSCORES', 'LIMIT', 0, 64)
for i = 1, #ended, 2 do
  local other = ended[i]
  local at = tonumber(ended[i + 1]) + margin_of(other)
  if at <= now then
    out[#out + 1] = other
    out[3] = out[3] + 1
  else
    sooner(at - now)
  end
end
-- The soonest live lease of another member.
local soonest = redis.call('ZRANGEBYSCORE', P .. 'leases', '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 2)
for i = 1, #soonest, 2 do
  if soonest[i] ~= node then
    sooner(tonumber(soonest[i + 1]) + margin_of(soonest[i]) - now)
    break
  end
end
out[2] = tostring(next_ms)
-- One ZCARD per name: cheap when nothing is parked, the usual case.
for _, name in ipairs(redis.call('SMEMBERS', P .. 'names:' .. node)) do
  if redis.call('ZCARD', P .. 'parked:' .. name) > 0 then
    out[#out + 1] = name
  end
end
return out
