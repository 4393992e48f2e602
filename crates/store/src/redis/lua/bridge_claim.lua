-- bridge_claim(source, partition, node, lease): ARGV[1..4]. `node` becomes (or stays)
-- the owner of the bridge of the source partition unless another owner's lease (ms)
-- is still running; the owner's lease is renewed. Returns {1, next offset or nil}
-- when `node` owns it, {0, owner} when another member does.
local id = ARGV[1] .. '|' .. ARGV[2]
local node, lease = ARGV[3], tonumber(ARGV[4])
local f = redis.call('HMGET', BRIDGES, 'o|' .. id, 'e|' .. id, 'n|' .. id)
local now = now_ms()
if f[1] and f[1] ~= node and tonumber(f[2]) > now then
  return { 0, f[1] }
end
redis.call('HSET', BRIDGES, 'o|' .. id, node, 'e|' .. id, now + lease)
if f[3] then
  return { 1, tonumber(f[3]) }
end
return { 1 }
