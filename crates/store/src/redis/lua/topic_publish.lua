-- topic_publish(event): ARGV[1]. The offset of the event (creates the topic if needed).
return append(ARGV[1], now_ms())
