-- Helpers shared by every transition script (prepended to each script at build time,
-- after the request codes of `crates/store/src/codes.rs` as the locals QUEUED, PARKED,
-- HELD, DONE, PAUSED (statuses) and CALL, TELL, PROMISE (kinds): no script spells a code).
--
-- Calling convention of every script: KEYS[1] is "<prefix>members" (it only tells Redis
-- Cluster which slot the script touches: every key of one application shares the hash
-- tag of the prefix), ARGV[1] is the key prefix "kar:{<app>}:", ARGV[2] a random
-- number drawn by the client (Lua's math.random is deterministic inside Redis) and
-- ARGV[3] the fence: the node on whose behalf the script runs, or '' (see the end of
-- this file). The fence is removed from ARGV here, so the scripts' own arguments start
-- at ARGV[3].

local P = ARGV[1]
local FENCE = ARGV[3]
table.remove(ARGV, 3)

-- A broken invariant of kar (a bug, not a condition that a retry fixes): raised as an
-- `ERR` reply whose text contains "script", which the client classifies as
-- StoreError::Invariant (kar-store-api, `From<RedisError>`). Raise it before any write:
-- Redis does not roll back what a failing script wrote.
local function invariant(message)
  error(redis.error_reply('ERR script invariant: ' .. message))
end

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

-- The fencing margin of a member (ms, hash `margins`, written at join; 0 for a member
-- that joined without one): it stopped its component this long before its lease
-- ended (on its own clock), so it may be recovered only this long after.
local function margin_of(node)
  return tonumber(redis.call('HGET', P .. 'margins', node) or '0')
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

-- Appends Execute(id) to the inbox of `node`. The record is the request as enqueued;
-- `a` overlays its delivery attempt (the `attempt` field, counted by recovery).
local function push_execute(node, id, record)
  local attempt = redis.call('HGET', P .. 'req:' .. id, 'attempt')
  if attempt and attempt ~= '0' then
    redis.call('XADD', P .. 'inbox:' .. node, '*', 't', 'e', 'i', id, 'p', record, 'a', attempt)
  else
    redis.call('XADD', P .. 'inbox:' .. node, '*', 't', 'e', 'i', id, 'p', record)
  end
end

-- Tells every live member (but `except`) that the mesh changed. Dead members get
-- nothing: their inbox is deleted once their recovery ends.
local function push_members_changed(except, now)
  for _, node in ipairs(redis.call('HKEYS', P .. 'members')) do
    if node ~= except and live(node, now) then
      redis.call('XADD', P .. 'inbox:' .. node, '*', 't', 'm')
    end
  end
end

-- Assigns request `id` to `node`: queued, indexed by arrival order, in the inbox.
local function assign(id, seq, record, node)
  redis.call('HSET', P .. 'req:' .. id, 'status', QUEUED, 'assignee', node)
  redis.call('ZADD', P .. 'assigned:' .. node, seq, id)
  push_execute(node, id, record)
end

-- Records `node` as the placement of `actor` (an encoded actor reference).
local function place(actor, node)
  local old = redis.call('HGET', P .. 'place', actor)
  if old and old ~= node then
    redis.call('SREM', P .. 'placed:' .. old, actor)
  end
  redis.call('HSET', P .. 'place', actor, node)
  redis.call('SADD', P .. 'placed:' .. node, actor)
end

-- Where a request goes: for an actor (`actor` non-empty), its placement while that
-- member lives, else a random live member offering the type, recorded as the new
-- placement; for a service, a random live member offering it. nil: nobody offers it.
local function destination(name, actor, now)
  if actor and actor ~= '' then
    local placed = redis.call('HGET', P .. 'place', actor)
    if placed and live(placed, now) then
      return placed
    end
    local picked = pick(name, now)
    if picked then
      place(actor, picked)
    end
    return picked
  end
  return pick(name, now)
end

-- Routes request `id` to its destination, or parks it. Returns the node or nil.
-- While requests parked for `name` wait to be adopted (a member that joined adopts
-- them in batches: adopt.lua), a new one parks behind them, so that it cannot
-- overtake an earlier request to its actor; `adopting` is set by the adoption itself.
local function route(id, name, seq, record, now, actor, adopting)
  local target = nil
  if adopting or redis.call('ZCARD', P .. 'parked:' .. name) == 0 then
    target = destination(name, actor, now)
  end
  if target then
    assign(id, seq, record, target)
  else
    local key = P .. 'req:' .. id
    redis.call('HSET', key, 'status', PARKED)
    redis.call('HDEL', key, 'assignee')
    redis.call('ZADD', P .. 'parked:' .. name, seq, id)
  end
  return target
end

-- Stores new request `id` (its record and routing fields, with the next arrival number)
-- and returns that number; the caller then routes it. The request joins `live`, the
-- index of pending requests by arrival that operators list (control: list_requests);
-- every transition that finishes or deletes a request takes it out (`unlist`).
local function store_request(id, name, kind, caller, record, actor)
  local seq = redis.call('INCR', P .. 'seq')
  redis.call('HSET', P .. 'req:' .. id, 'name', name, 'kind', kind, 'caller', caller, 'seq', seq,
    'rec', record, 'actor', actor)
  redis.call('ZADD', P .. 'live', seq, id)
  return seq
end

-- Request `id` is no longer pending (done, or deleted): out of the `live` index, and
-- out of `firing`, the pending reminder firings (reminders_fire, reminders_pending).
local function unlist(id)
  redis.call('ZREM', P .. 'live', id)
  redis.call('ZREM', P .. 'firing', id)
end

-- Whether request `id` has unfinished children: calls or promises it made (the set
-- `kids:<id>`, filled by enqueue) that are still queued, parked or held. Entries of
-- finished children are dropped on the way.
local function has_unfinished_children(id)
  local kids = P .. 'kids:' .. id
  for _, kid in ipairs(redis.call('SMEMBERS', kids)) do
    local status = redis.call('HGET', P .. 'req:' .. kid, 'status')
    if status and status ~= DONE then
      return true
    end
    redis.call('SREM', kids, kid)
  end
  return false
end

-- Request `id` (of kind `kind`, made by `parent`) just finished: it leaves its
-- parent's children, and a held parent whose last unfinished child it was is routed.
local function child_finished(id, kind, parent, now)
  if kind == TELL or not parent or parent == '' then
    return
  end
  redis.call('SREM', P .. 'kids:' .. parent, id)
  local f = redis.call('HMGET', P .. 'req:' .. parent, 'status', 'name', 'seq', 'rec', 'actor')
  if f[1] == HELD and not has_unfinished_children(parent) then
    route(parent, f[2], f[3], f[4], now, f[5])
  end
end

-- Actor state of actor `a` (encoded reference, self-delimiting): flat entries in the
-- hash `sf:<a>`; submap `k` in the hash `sm:<a><k>` with its insertion order in the
-- zset `smo:<a><k>` (scores from the counter `sseq`); the set `smk:<a>` lists the
-- non-empty submaps.

local function submap_set(actor, key, sub, value)
  local created = redis.call('HSET', P .. 'sm:' .. actor .. key, sub, value)
  if created == 1 then
    redis.call('ZADD', P .. 'smo:' .. actor .. key, redis.call('INCR', P .. 'sseq'), sub)
    redis.call('SADD', P .. 'smk:' .. actor, key)
  end
  return created
end

local function submap_remove(actor, key, sub)
  local hash = P .. 'sm:' .. actor .. key
  local removed = redis.call('HDEL', hash, sub)
  if removed == 1 then
    redis.call('ZREM', P .. 'smo:' .. actor .. key, sub)
    if redis.call('EXISTS', hash) == 0 then
      redis.call('SREM', P .. 'smk:' .. actor, key)
    end
  end
  return removed
end

local function submap_entries(actor, key)
  local hash = P .. 'sm:' .. actor .. key
  local out = {}
  for _, sub in ipairs(redis.call('ZRANGE', P .. 'smo:' .. actor .. key, 0, -1)) do
    out[#out + 1] = sub
    out[#out + 1] = redis.call('HGET', hash, sub)
  end
  return out
end

local function submap_clear(actor, key)
  local n = redis.call('HLEN', P .. 'sm:' .. actor .. key)
  redis.call('DEL', P .. 'sm:' .. actor .. key, P .. 'smo:' .. actor .. key)
  redis.call('SREM', P .. 'smk:' .. actor, key)
  return n
end

-- Removes every state entry of an actor; returns how many there were.
local function state_clear(actor)
  local n = redis.call('HLEN', P .. 'sf:' .. actor)
  redis.call('DEL', P .. 'sf:' .. actor)
  for _, key in ipairs(redis.call('SMEMBERS', P .. 'smk:' .. actor)) do
    n = n + submap_clear(actor, key)
  end
  redis.call('DEL', P .. 'smk:' .. actor)
  return n
end

-- The fence: a script run on behalf of a member whose lease is gone commits nothing
-- (the member may have been stopped past its lease, its requests recovered
-- elsewhere). The client maps this error to StoreError::Fenced.
if FENCE ~= '' and not live(FENCE, now_ms()) then
  return redis.error_reply('FENCED ' .. FENCE)
end
