-- submap_clear(actor, key): ARGV[3..]. Removes the actor's submap `key`; returns how
-- many entries it had.
return submap_clear(ARGV[3], ARGV[4])
