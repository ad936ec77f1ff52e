-- queue_promote.lua: move jobs whose retry is due from the delayed set to the stream.
--
-- KEYS[1]  job stream
-- KEYS[2]  delayed sorted set
-- ARGV[1]  now, Unix ms
-- ARGV[2]  job hash prefix (the job's hash is ARGV[2]..id, same slot)
-- ARGV[3]  most jobs to move
-- ARGV[4]  job stream MAXLEN bound
--
-- Reply: the number of jobs moved. Ids whose job hash is gone or no longer queued are
-- dropped from the set.
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local moved = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[2], id)
  local jk = ARGV[2] .. id
  if redis.call('HGET', jk, 'st') == 'queued' then
    local m = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'j', id)
    redis.call('HSET', jk, 'msg', m, 'upd', ARGV[1])
    moved = moved + 1
  end
end
return moved
