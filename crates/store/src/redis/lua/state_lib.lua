-- A multi-element state update (state_update.lua, complete_with_state.lua).
-- apply_state_update(actor, i): four counted lists from ARGV[i], applied in this
-- order (removals first):
--   n_rem     (key){n_rem}                       flat entries to remove
--   n_subrem  (key n (sub){n}){n_subrem}         submap entries to remove
--   n_upd     (key value){n_upd}                 flat entries to set
--   n_subupd  (key n (sub value){n}){n_subupd}   submap entries to set
-- Returns removed, added.
local function apply_state_update(actor, i)
  local removed, added = 0, 0
  local function nextarg()
    local v = ARGV[i]
    i = i + 1
    return v
  end
  for _ = 1, tonumber(nextarg()) do
    removed = removed + redis.call('HDEL', P .. 'sf:' .. actor, nextarg())
  end
  for _ = 1, tonumber(nextarg()) do
    local key = nextarg()
    for _ = 1, tonumber(nextarg()) do
      removed = removed + submap_remove(actor, key, nextarg())
    end
  end
  for _ = 1, tonumber(nextarg()) do
    local key = nextarg()
    added = added + redis.call('HSET', P .. 'sf:' .. actor, key, nextarg())
  end
  for _ = 1, tonumber(nextarg()) do
    local key = nextarg()
    for _ = 1, tonumber(nextarg()) do
      local sub = nextarg()
      added = added + submap_set(actor, key, sub, nextarg())
    end
  end
  return removed, added
end
