-- shard_heartbeat.lua: keep an instance in its group's member set and return the live
-- members, using the Redis server's clock so instances on machines with skewed clocks
-- agree on who is alive.
--
-- KEYS[1]  the group's member sorted set (<prefix>:{shard:<group>}:members)
-- ARGV[1]  this instance's id
-- ARGV[2]  membership TTL in milliseconds
--
-- Reply: the ids of the live members, this one included, in lexical order.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ttl * 10)
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(members)
return members
