-- state_remove_all(actor): ARGV[3]. Removes the actor's whole state; returns how many
-- entries there were.
return state_clear(ARGV[3])
