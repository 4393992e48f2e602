-- acl_check(topic_key, commands...): ARGV[3..]. Read only, and runs nothing it checks:
-- the commands of ARGV[4..] that the connection's ACL user may not run on the
-- application's keys or on a topic's key (`topic_key`), so that a user with too few
-- permissions is told at start-up which ones are missing rather than failing in the
-- middle of a transition. Each command comes with valid arguments, separated by
-- spaces, `K` standing for the key (Redis 7.0 crashes on arguments a command cannot
-- take); `CMD|SUB` is a subcommand. Returns the names of the commands denied. Redis
-- before 7.0 cannot check: nothing is reported then.
if redis.acl_check_cmd == nil then
  return {}
end
local key, topic = P .. 'acl-probe', ARGV[3]
local function allowed(form, k)
  local args = {}
  for word in form:gmatch('%S+') do
    if word == 'K' then
      word = k
    end
    args[#args + 1] = word
  end
  local command, sub = args[1]:match('^([^|]+)|(.+)$')
  if sub then
    args[1] = sub
    table.insert(args, 1, command)
  end
  return redis.acl_check_cmd(unpack(args))
end
local denied = {}
for i = 4, #ARGV do
  local form = ARGV[i]
  if not (allowed(form, key) and allowed(form, topic)) then
    denied[#denied + 1] = form:match('^%S+')
  end
end
return denied
