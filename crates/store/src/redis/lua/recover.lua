-- recover(dead, owner, ttl_ms, batch, max_attempts, unstarted...): ARGV[3..]. One bounded step of the recovery of a
-- member whose lease has expired (it died, or left: leave.lua ended its lease). The
-- fence is the recovering member ('' for a leave).
--
-- The recovery belongs to whoever holds the lock `recovery:<dead>` (value `owner`,
-- expiring after `ttl_ms`, renewed by every step). Each step handles at most `batch`
-- items: outcomes only the dead member could collect (deleted), actor placements on it
-- (dropped; routing never uses a dead member's placement anyway), then the requests
-- queued on it, lowest arrival first, each re-delivered with its attempt incremented:
-- held when it has unfinished children (routed by the last child's completion), else
-- routed or parked; or, when its executor has now died `max_attempts` times (the new
-- attempt reaches max_attempts; 0 = unlimited), paused: status PAUSED, no assignee, in
-- no index or inbox (nothing but resume.lua routes it again). The requests listed in
-- `unstarted` and of `released:<dead>` (a leaving member never handed them to its
-- component: leave.lua) keep their attempt and are never paused. Every item is removed from its index as it is handled, so a
-- recoverer that dies between steps leaves an exact list of what remains: once the
-- lock expires, another member resumes there, and nothing is delivered twice or lost.
-- When nothing remains, a step (never the one that took the lock) removes the member
-- and its inbox, releases the lock and tells the live members.
--
-- Returns {code, paused...}: code '1': a step was done, call again; '0': the recovery is
-- over; '-1': `dead` is not a member (recovered already); '-2': another owner holds the
-- lock; '-3': `dead` is live, or its fencing margin has not passed since its lease
-- ended; then the ids of the requests this step paused.
local now = now_ms()
local dead, owner, ttl, batch = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local max_attempts = tonumber(ARGV[7])
local paused = {'1'}
local unstarted = {}
for i = 8, #ARGV do
  unstarted[ARGV[i]] = true
end
-- Those a leave released (leave.lua), whoever recovers it.
local released = P .. 'released:' .. dead
for _, id in ipairs(redis.call('SMEMBERS', released)) do
  unstarted[id] = true
end
local lock = P .. 'recovery:' .. dead
if redis.call('HEXISTS', P .. 'members', dead) == 0 then
  redis.call('ZREM', P .. 'leases', dead)
  redis.call('HDEL', P .. 'margins', dead)
  redis.call('DEL', released)
  if redis.call('GET', lock) == owner then
    redis.call('DEL', lock)
  end
  return {'-1'}
end
-- Live, or its lease ended less than its fencing margin ago: it may still be running
-- the attempts this would re-deliver (its own clock stopped it a margin before the
-- lease ended; waiting as long again covers clock drift and a slow stop).
local expiry = redis.call('ZSCORE', P .. 'leases', dead)
if expiry ~= false and tonumber(expiry) + margin_of(dead) > now then
  return {'-3'}
end
local holder = redis.call('GET', lock)
local claimed = false
if not holder then
  redis.call('SET', lock, owner, 'PX', ttl)
  claimed = true
  -- Nothing is routed to a dead member (routing checks leases); its routes go anyway.
  for _, name in ipairs(redis.call('SMEMBERS', P .. 'names:' .. dead)) do
    redis.call('ZREM', P .. 'route:' .. name, dead)
  end
  redis.call('DEL', P .. 'names:' .. dead)
elseif holder ~= owner then
  return {'-2'}
else
  redis.call('PEXPIRE', lock, ttl)
end

local budget = batch
local done = P .. 'done:' .. dead
for _, id in ipairs(redis.call('SPOP', done, budget)) do
  local key = P .. 'req:' .. id
  if redis.call('HGET', key, 'status') == DONE then
    redis.call('DEL', key)
  end
  budget = budget - 1
end
if budget > 0 then
  for _, actor in ipairs(redis.call('SPOP', P .. 'placed:' .. dead, budget)) do
    if redis.call('HGET', P .. 'place', actor) == dead then
      redis.call('HDEL', P .. 'place', actor)
    end
    budget = budget - 1
  end
end
local assigned = P .. 'assigned:' .. dead
if budget > 0 then
  for _, id in ipairs(redis.call('ZRANGE', assigned, 0, budget - 1)) do
    redis.call('ZREM', assigned, id)
    local key = P .. 'req:' .. id
    local f = redis.call('HMGET', key, 'status', 'assignee', 'name', 'seq', 'rec', 'actor')
    if f[1] == QUEUED and f[2] == dead then
      local charged = not unstarted[id]
      local attempt = 0
      if charged then
        attempt = redis.call('HINCRBY', key, 'attempt', 1)
      end
      if charged and max_attempts > 0 and attempt >= max_attempts then
        redis.call('HSET', key, 'status', PAUSED)
        redis.call('HDEL', key, 'assignee')
        paused[#paused + 1] = id
      elseif has_unfinished_children(id) then
        redis.call('HSET', key, 'status', HELD)
        redis.call('HDEL', key, 'assignee')
      else
        route(id, f[3], f[4], f[5], now, f[6])
      end
    end
  end
end

if claimed or redis.call('SCARD', done) > 0 or redis.call('SCARD', P .. 'placed:' .. dead) > 0
    or redis.call('ZCARD', assigned) > 0 then
  return paused
end
redis.call('HDEL', P .. 'members', dead)
redis.call('ZREM', P .. 'leases', dead)
redis.call('HDEL', P .. 'margins', dead)
redis.call('DEL', P .. 'inbox:' .. dead, lock, released)
push_members_changed(nil, now)
paused[1] = '0'
return paused
