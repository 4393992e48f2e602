-- submap_entries(actor, key): ARGV[3..]; read only. {sub, value, ...} of the actor's
-- submap `key`, in insertion order.
return submap_entries(ARGV[3], ARGV[4])
