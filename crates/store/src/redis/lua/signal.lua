-- signal(node, payload): ARGV[3..]. Appends a signal (`t=s`, `p` = postcard Signal) to
-- the inbox of `node` if it is live; a signal to a member that is not is dropped
-- (signals are not durable: see Signal in kar-store-api), and no key is created for
-- it. 1 if appended, 0 if dropped.
local node, payload = ARGV[3], ARGV[4]
if not live(node, now_ms()) then
  return 0
end
redis.call('XADD', P .. 'inbox:' .. node, '*', 't', 's', 'p', payload)
return 1
