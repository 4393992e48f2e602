-- members(): the records of the members whose lease is valid (read only).
local now = now_ms()
local all = redis.call('HGETALL', P .. 'members')
local out = {}
for i = 1, #all, 2 do
  if live(all[i], now) then
    out[#out + 1] = all[i + 1]
  end
end
return out
