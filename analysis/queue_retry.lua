-- queue_retry.lua: requeue a dead job by hand, with its delivery count reset.
--
-- KEYS[1]  job stream
-- KEYS[2]  delayed sorted set
-- KEYS[3]  dead-letter stream
-- KEYS[4]  the job hash
-- ARGV[1]  job id
-- ARGV[2]  now, Unix ms
-- ARGV[3]  job TTL, seconds
-- ARGV[4]  queue length bound
-- ARGV[5]  job stream MAXLEN bound
--
-- Reply: "ok"; "missing" if the job hash is gone; "notdead" if the job is not dead;
-- "full" if the queue is at its bound.
local f = redis.call('HMGET', KEYS[4], 'st', 'dmsg')
if not f[1] then return 'missing' end
if f[1] ~= 'dead' then return 'notdead' end
if redis.call('XLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  return 'full'
end
if f[2] then redis.call('XDEL', KEYS[3], f[2]) end
local m = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*', 'j', ARGV[1])
redis.call('HSET', KEYS[4], 'st', 'queued', 'msg', m, 'att', '0', 'err', '', 'upd', ARGV[2])
redis.call('HDEL', KEYS[4], 'dmsg')
redis.call('EXPIRE', KEYS[4], ARGV[3])
return 'ok'
