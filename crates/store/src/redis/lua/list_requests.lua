-- list_requests(after, limit, status, service, actor_type, actor_id): ARGV[3..]. Read
-- only. The pending requests after arrival number `after`, in arrival order (the `live`
-- index), that match every filter given ('' for none: `status` a status code, `service`
-- a service name, `actor_type` and `actor_id` the target actor's), at most `limit` of
-- them; the script looks at no more than SCAN_BUDGET entries of the index. Returns
-- {next, entries...}: `next` is the arrival number of the last entry looked at when
-- more may follow ('' at the end of the index), then six values per request
-- (pending_entry).
local SCAN_BUDGET = 10000
local after, limit = ARGV[3], tonumber(ARGV[4])
local status, service, actor_type, actor_id = ARGV[5], ARGV[6], ARGV[7], ARGV[8]

-- The id in an encoded actor `<len(type)>:<type><len(id)>:<id>`.
local function id_of(actor)
  local colon = string.find(actor, ':', 1, true)
  local rest = colon + 1 + tonumber(string.sub(actor, 1, colon - 1))
  local second = string.find(actor, ':', rest, true)
  return string.sub(actor, second + 1)
end

local function keeps(r, actor)
  if r.status == DONE or (status ~= '' and r.status ~= status) then
    return false
  end
  if actor == '' then
    return actor_type == '' and actor_id == '' and (service == '' or r.name == service)
  end
  return service == '' and (actor_type == '' or r.name == actor_type)
    and (actor_id == '' or id_of(actor) == actor_id)
end

local out = {''}
local found, scanned = 0, 0
local from = '(' .. after
while true do
  local ids = redis.call('ZRANGEBYSCORE', P .. 'live', from, '+inf', 'WITHSCORES', 'LIMIT', 0, 256)
  if #ids == 0 then
    return out
  end
  for i = 1, #ids, 2 do
    local id, seq = ids[i], ids[i + 1]
    local r = pending_fields(id)
    if r and keeps(r, redis.call('HGET', P .. 'req:' .. id, 'actor') or '') then
      pending_entry(out, id, r)
      found = found + 1
    end
    scanned = scanned + 1
    if found >= limit or scanned >= SCAN_BUDGET then
      out[1] = seq
      return out
    end
    from = '(' .. seq
  end
end
