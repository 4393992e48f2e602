-- binding_cancel(kind, a, b): ARGV[3..]. 1 if binding `b` of actor `a` existed.
return binding_remove(binding_kind(ARGV[3]), ARGV[4], ARGV[5])
