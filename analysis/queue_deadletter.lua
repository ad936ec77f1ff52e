-- queue_deadletter.lua: move a malformed stream entry to the dead-letter stream at once.
--
-- KEYS[1]  job stream
-- KEYS[2]  dead-letter stream
-- ARGV[1]  consumer group
-- ARGV[2]  entry id
-- ARGV[3]  error text
-- ARGV[4]  the entry's fields, as received, for inspection
-- ARGV[5]  now, Unix ms
-- ARGV[6]  dead-letter stream MAXLEN bound
--
-- Reply: the dead-letter entry id.
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'j', '', 'e', ARGV[3],
  'raw', ARGV[4], 'at', ARGV[5])
