-- Helpers shared by every transition script (prepended to each script at build time).
--
-- Calling convention of every script: KEYS[1] is "<prefix>members" (it only tells Redis
-- Cluster which slot the script touches: every key of one application shares the hash
-- tag of the prefix), ARGV[1] is the key prefix "kar:{<app>}:" and ARGV[2] a random
-- number drawn by the client (Lua's math.random is deterministic inside Redis).

local P = ARGV[1]

-- Server time in milliseconds: every lease is computed from the Redis clock, so the
-- clocks of the hosts running kar do not matter.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Park-Miller generator seeded from ARGV[2]; products stay below 2^53 (exact doubles).
local rng = (tonumber(ARGV[2]) % 2147483646) + 1
local function rand(n)
  rng = (rng * 16807) % 2147483647
  return rng % n
end

-- A member is live while its lease (score of the leases zset) lies in the future.
local function live(node, now)
  local expiry = redis.call('ZSCORE', P .. 'leases', node)
  return expiry ~= false and tonumber(expiry) > now
end

-- A random live member offering `name`, or nil.
local function pick(name, now)
  local candidates = {}
  for _, node in ipairs(redis.call('ZRANGE', P .. 'route:' .. name, 0, -1)) do
    if live(node, now) then
      candidates[#candidates + 1] = node
    end
  end
  if #candidates == 0 then
    return nil
  end
  return candidates[rand(#candidates) + 1]
end

local function push_execute(node, id, record)
  redis.call('XADD', P .. 'inbox:' .. node, '*', 't', 'e', 'i', id, 'p', record)
end

local function push_members_changed(except)
  for _, node in ipairs(redis.call('HKEYS', P .. 'members')) do
    if node ~= except then
      redis.call('XADD', P .. 'inbox:' .. node, '*', 't', 'm')
    end
  end
end

-- Assigns request `id` to `node`: queued, indexed by arrival order, in the inbox.
local function assign(id, seq, record, node)
  redis.call('HSET', P .. 'req:' .. id, 'status', 'q', 'assignee', node)
  redis.call('ZADD', P .. 'assigned:' .. node, seq, id)
  push_execute(node, id, record)
end

-- Routes request `id` to a random live member offering `name`, or parks it.
-- Returns the chosen node or nil.
local function route(id, name, seq, record, now)
  local target = pick(name, now)
  if target then
    assign(id, seq, record, target)
  else
    local key = P .. 'req:' .. id
    redis.call('HSET', key, 'status', 'p')
    redis.call('HDEL', key, 'assignee')
    redis.call('ZADD', P .. 'parked:' .. name, seq, id)
  end
  return target
end

-- Removes a member that left or died (same logic as the embedded engine's
-- remove_member): its queued requests are re-routed in arrival order or parked, the
-- finished requests only it could collect are dropped, its inbox goes, and every
-- remaining member gets MembersChanged. Returns whether the member was there.
local function remove_member(node, now)
  if redis.call('HDEL', P .. 'members', node) == 0 then
    redis.call('ZREM', P .. 'leases', node)
    return false
  end
  redis.call('ZREM', P .. 'leases', node)
  for _, name in ipairs(redis.call('SMEMBERS', P .. 'names:' .. node)) do
    redis.call('ZREM', P .. 'route:' .. name, node)
  end
  redis.call('DEL', P .. 'names:' .. node, P .. 'inbox:' .. node)
  for _, id in ipairs(redis.call('SMEMBERS', P .. 'done:' .. node)) do
    redis.call('DEL', P .. 'req:' .. id)
  end
  redis.call('DEL', P .. 'done:' .. node)
  local orphans = redis.call('ZRANGE', P .. 'assigned:' .. node, 0, -1)
  redis.call('DEL', P .. 'assigned:' .. node)
  for _, id in ipairs(orphans) do
    local f = redis.call('HMGET', P .. 'req:' .. id, 'name', 'seq', 'rec', 'status')
    if f[4] == 'q' then
      route(id, f[1], f[2], f[3], now)
    end
  end
  push_members_changed(nil)
  return true
end

-- Removes every member whose lease has expired.
local function sweep(now)
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', now)) do
    remove_member(node, now)
  end
end

