-- Prelude (after lib.lua) of the operator's scripts (kill, pause, list_requests,
-- request_get): reading a pending request, taking it away from its assignee.

-- The fields of request `id` that the operator's scripts read, by name (nil: unknown).
local function pending_fields(id)
  local f = redis.call('HMGET', P .. 'req:' .. id, 'status', 'kind', 'caller', 'assignee',
    'parent', 'name', 'seq', 'attempt', 'rec')
  if not f[1] then
    return nil
  end
  return { status = f[1], kind = f[2], caller = f[3], assignee = f[4] or '', parent = f[5] or '',
    name = f[6], seq = f[7], attempt = f[8] or '0', rec = f[9] }
end

-- Takes request `id` (fields `r`) out of its assignee's or its name's index; a live
-- assignee is sent the signal `abandon` (postcard Signal::Abandon): it may be running
-- the request, and its Execute entry, if not read yet, comes before the signal.
local function withdraw(id, r, abandon, now)
  if r.status == QUEUED and r.assignee ~= '' then
    redis.call('ZREM', P .. 'assigned:' .. r.assignee, id)
    if live(r.assignee, now) then
      redis.call('XADD', P .. 'inbox:' .. r.assignee, '*', 't', 's', 'p', abandon)
    end
  elseif r.status == PARKED then
    redis.call('ZREM', P .. 'parked:' .. r.name, id)
  end
end

-- The reply entry of one pending request: seq, id, status, assignee, attempt, record.
local function pending_entry(out, id, r)
  out[#out + 1] = r.seq
  out[#out + 1] = id
  out[#out + 1] = r.status
  out[#out + 1] = r.assignee
  out[#out + 1] = r.attempt
  out[#out + 1] = r.rec
end
