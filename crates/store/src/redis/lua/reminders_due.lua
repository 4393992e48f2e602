-- reminders_due(now, limit, claim): ARGV[3..]. The records of the reminders due at
-- `now` (Unix ms), earliest first, at most `limit`, each claimed by the caller for
-- `claim` ms: its score in `due` moves to now + claim, so that the passes of the other
-- members skip it meanwhile instead of reading it and building its request only to
-- find it fired (every member with a component fires reminders). The claim changes
-- nothing reminders_fire compares (the generation and the target in the reminder's
-- hash), so a claim never decides who fires: a reminder whose claimer died or failed
-- before firing is due again once the claim ends, and fires then for its target.
local now, limit, claim = ARGV[3], ARGV[4], ARGV[5]
local due = redis.call('ZRANGEBYSCORE', P .. 'due', '-inf', now, 'LIMIT', 0, limit)
local claimed = tonumber(now) + tonumber(claim)
for _, ab in ipairs(due) do
  redis.call('ZADD', P .. 'due', 'XX', claimed, ab)
end
return binding_records(BINDINGS.reminder, due)
