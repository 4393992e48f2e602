-- binding_get(kind, a, b): ARGV[3..]; read only. The record of binding `b` of actor
-- `a`, or nil.
return binding_record(binding_kind(ARGV[3]), ARGV[4] .. ARGV[5])
