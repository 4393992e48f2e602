-- leave(node): ARGV[3]
remove_member(ARGV[3], now_ms())
return 1
