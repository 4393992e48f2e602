-- Prelude of the topic scripts. Topics are global, outside every application's hash
-- tag, so these scripts do NOT include lib.lua (no prefix, no fence) and their
-- arguments start at ARGV[1].
-- KEYS[1] = "kar:topic:{<tag>}:meta": hash, `last` = newest offset ever published,
--           `floor` = offsets at or below it were deleted (topic deletion or
--           trimming), `live` = '1' while the topic exists;
-- KEYS[2] = "kar:topic:{<tag>}:log": hash, offset -> event;
-- KEYS[3] = "kar:topic:{<tag>}:at": hash, offset -> time appended (ms; absent for
--           events appended before retention existed: trimmable at once);
-- KEYS[4] = "kar:topic:{<tag>}:readers": hash, application -> the lowest position of
--           its subscriptions to the topic (what trimming must keep);
-- KEYS[5] = "kar:topic:{<tag>}:bridges": hash, per source partition `<source>|<p>`:
--           `o|<source>|<p>` owner node, `e|...` owner's lease expiry (ms), `n|...`
--           next offset to read.
local META, LOG, AT, READERS, BRIDGES = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

-- Server time in milliseconds (as lib.lua's).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Appends one event; returns its offset (creates the topic if needed).
local function append(event, now)
  local offset = redis.call('HINCRBY', META, 'last', 1)
  redis.call('HSET', META, 'live', '1')
  redis.call('HSET', LOG, offset, event)
  redis.call('HSET', AT, offset, now)
  return offset
end
