-- shard_acquire.lua: take or renew the lease on a unit of work.
--
-- KEYS[1]  the unit's lease key (<prefix>:{shard:<group>}:lease:<unit>)
-- ARGV[1]  this instance's id
-- ARGV[2]  lease TTL in milliseconds
--
-- Reply: 1 if this instance holds the lease now (taken or renewed), 0 if another does.
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
