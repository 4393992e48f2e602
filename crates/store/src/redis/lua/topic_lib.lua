-- Prelude of the topic scripts. Topics are global, outside every application's hash
-- tag, so these scripts do NOT include lib.lua (no prefix, no fence) and their
-- arguments start at ARGV[1].
-- KEYS[1] = "kar:topic:{<tag>}:meta": hash, `last` = newest offset ever published,
--           `floor` = offsets at or below it were deleted, `live` = '1' while the
--           topic exists;
-- KEYS[2] = "kar:topic:{<tag>}:log": hash, offset -> event.
local META, LOG = KEYS[1], KEYS[2]
