-- results_store.lua: fenced write of a target's result and indicator state.
--
-- KEYS[1]  job hash of the delivery writing
-- KEYS[2]  result hash of the target
-- KEYS[3]  state key of the target
-- ARGV[1]  the delivery's fencing token
-- ARGV[2]  result, JSON
-- ARGV[3]  state, JSON ("" to leave the state as it is)
-- ARGV[4]  TTL of result and state, seconds
-- ARGV[5]  now, Unix ms
--
-- Reply: 1 written; 0 refused because the delivery's lease was lost (the job hash holds
-- another token) or the result was written under a newer token.
if redis.call('HGET', KEYS[1], 'tok') ~= ARGV[1] then
  return 0
end
local f = redis.call('HGET', KEYS[2], 'fence')
if f and tonumber(f) > tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[2], 'fence', ARGV[1], 'data', ARGV[2], 'at', ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[4])
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4])
end
return 1
