-- shard_release.lua: give up a lease, if this instance still holds it.
--
-- KEYS[1]  the unit's lease key
-- ARGV[1]  this instance's id
--
-- Reply: 1 if the lease was deleted, 0 if another instance held it (or nobody).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
