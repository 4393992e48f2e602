-- topic_reader(app, oldest): ARGV[1..2]. Called before application `app` writes a
-- subscription to the topic: returns the position the subscription starts from (0
-- with `oldest` = '1', else the newest offset, 0 if none) and lowers `app`'s reader
-- mark to it, so trimming keeps what the new subscription will read even before
-- `app` runs a trim pass of its own (which then sets the mark to its true lowest
-- position).
local app, oldest = ARGV[1], ARGV[2]
local start = 0
if oldest ~= '1' then
  start = tonumber(redis.call('HGET', META, 'last') or '0')
end
local mark = redis.call('HGET', READERS, app)
if not mark or tonumber(mark) > start then
  redis.call('HSET', READERS, app, start)
end
return start
