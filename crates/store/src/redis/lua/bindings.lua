-- Prelude (after lib.lua) of the scripts of actor *bindings*: reminders and event
-- subscriptions, which share their layout. Binding `b` of actor `a` (encoded
-- reference, self-delimiting) of a kind is the hash `<hash><a><b>`; the set `<ids><a>`
-- holds the ids of the actor's bindings of that kind; `<index>` holds every `<a><b>` of
-- the application (reminders: the zset `due`, by target time, so that firing reads only
-- what is due; subscriptions: the set `allsubs`). Numbers travel as strings: no Lua
-- arithmetic on them.

-- Whether request `id` (a delivery) is still unfinished: a tell's record goes when it
-- completes or expires parked.
local function unfinished(id)
  if not id or id == '' then
    return false
  end
  local status = redis.call('HGET', P .. 'req:' .. id, 'status')
  return status ~= false and status ~= DONE
end

local BINDINGS = {
  -- Fields: t, i (actor type and id), r, path, due (target, Unix ms), text (targetTime
  -- as given, '' once advanced), period (ns), data, gen (from the counter `rseq`, new
  -- at every schedule: the compare-and-set token of reminders_fire), trace (the
  -- traceparent of the scheduling call while tracing is on; absent: none).
  reminder = {
    hash = 'rem:', ids = 'rems:', index = 'due', sorted = true,
    fields = { 't', 'i', 'r', 'path', 'due', 'text', 'period', 'data', 'gen', 'trace' },
  },
  -- Fields: t, i, s, path, topic, ct, group, oldest ('1'/'0'), pos (offset of the last
  -- event delivered), inflight (id of the request delivering it, '' once none). A
  -- record shows instead of `inflight` whether that delivery is unfinished ('1'/'0').
  subscription = {
    hash = 'sub:', ids = 'subs:', index = 'allsubs', sorted = false,
    fields = { 't', 'i', 's', 'path', 'topic', 'ct', 'group', 'oldest', 'pos', 'inflight' },
    shown = function(f)
      if unfinished(f[10]) then
        f[10] = '1'
      else
        f[10] = '0'
      end
    end,
  },
}

-- The kind named by the client ('reminder' or 'subscription').
local function binding_kind(name)
  return BINDINGS[name] or invariant('unknown binding kind ' .. tostring(name))
end

-- The record (the kind's fields) of binding `<a><b>`, or nil.
local function binding_record(kind, ab)
  local f = redis.call('HMGET', P .. kind.hash .. ab, unpack(kind.fields))
  if not f[1] then
    return nil
  end
  if kind.shown then
    kind.shown(f)
  end
  return f
end

-- The records of the bindings `<a><b>` listed (missing ones skipped).
local function binding_records(kind, abs)
  local out = {}
  for _, ab in ipairs(abs) do
    local rec = binding_record(kind, ab)
    if rec then
      out[#out + 1] = rec
    end
  end
  return out
end

-- Indexes binding `b` of actor `a` (its hash is written by the caller); `score` orders
-- the sorted index.
local function binding_index(kind, a, b, score)
  redis.call('SADD', P .. kind.ids .. a, b)
  if kind.sorted then
    redis.call('ZADD', P .. kind.index, score, a .. b)
  else
    redis.call('SADD', P .. kind.index, a .. b)
  end
end

-- Removes binding `b` of actor `a`; 1 if it existed.
local function binding_remove(kind, a, b)
  local removed = redis.call('DEL', P .. kind.hash .. a .. b)
  redis.call('SREM', P .. kind.ids .. a, b)
  if kind.sorted then
    redis.call('ZREM', P .. kind.index, a .. b)
  else
    redis.call('SREM', P .. kind.index, a .. b)
  end
  return removed
end

-- Stores and routes the request whose six arguments start at ARGV[i] (id, name, kind,
-- caller, record, actor: see `request_args` in requests.rs), unless a request with
-- that id exists. Returns 'a:<node>' (assigned), 'p' (parked) or nil (it existed).
local function enqueue_at(i, now)
  local id, name, kind, caller, record, actor = unpack(ARGV, i, i + 5)
  if redis.call('EXISTS', P .. 'req:' .. id) == 1 then
    return nil
  end
  local seq = store_request(id, name, kind, caller, record, actor)
  local target = route(id, name, seq, record, now, actor)
  if target then
    return 'a:' .. target
  end
  return 'p'
end
