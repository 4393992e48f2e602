-- purge(pattern): ARGV[3] is the glob matching every key of the application.
-- Deletes them all in one script (atomic; scans the keyspace of the node holding the
-- application's slot). Returns the number of keys deleted.
local cursor, deleted = '0', 0
repeat
  local reply = redis.call('SCAN', cursor, 'MATCH', ARGV[3], 'COUNT', 1000)
  cursor = reply[1]
  for _, key in ipairs(reply[2]) do
    deleted = deleted + redis.call('DEL', key)
  end
until cursor == '0'
return deleted
