-- queue_enqueue.lua: add a job for a target, or coalesce with the target's job that is
-- already waiting or running.
--
-- KEYS[1]  job stream
-- KEYS[2]  delayed sorted set (jobs waiting for a retry)
-- KEYS[3]  coalesce key of the target (holds the id of its live job)
-- KEYS[4]  job hash of the new job
-- ARGV[1]  new job id
-- ARGV[2]  job hash prefix (the live job's hash is ARGV[2]..id, same slot)
-- ARGV[3..6] exchange, symbol, interval, analyzer
-- ARGV[7]  watermark, Unix ms
-- ARGV[8]  now, Unix ms
-- ARGV[9]  queue length bound (stream entries + delayed jobs)
-- ARGV[10] job TTL, seconds
-- ARGV[11] stream MAXLEN hard bound
--
-- Reply: {id, how}; how is "queued" (new job), "coalesced" (a waiting job's watermark
-- was raised), "rerun" (the running job will run once more) or "full" (id empty: the
-- queue is at its bound, nothing was written).
local cur = redis.call('GET', KEYS[3])
if cur then
  local jk = ARGV[2] .. cur
  local f = redis.call('HMGET', jk, 'st', 'msg', 'wm', 'rwm')
  local st, msg = f[1], f[2]
  -- The live job only counts if its entry still exists (or it waits in the delayed
  -- set): an entry trimmed away must not swallow new requests.
  local alive = false
  if st == 'queued' or st == 'running' then
    if redis.call('ZSCORE', KEYS[2], cur) then
      alive = true
    elseif msg and #redis.call('XRANGE', KEYS[1], msg, msg) > 0 then
      alive = true
    end
  end
  if alive then
    local wm = tonumber(ARGV[7])
    if st == 'queued' then
      if wm > tonumber(f[3] or '0') then
        redis.call('HSET', jk, 'wm', ARGV[7])
      end
      return {cur, 'coalesced'}
    end
    redis.call('HSET', jk, 'rerun', '1')
    if wm > tonumber(f[4] or '0') then
      redis.call('HSET', jk, 'rwm', ARGV[7])
    end
    return {cur, 'rerun'}
  end
end
if redis.call('XLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[9]) then
  return {'', 'full'}
end
local msg = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[11], '*', 'j', ARGV[1])
redis.call('HSET', KEYS[4], 'ex', ARGV[3], 'sym', ARGV[4], 'iv', ARGV[5], 'an', ARGV[6],
  'wm', ARGV[7], 'st', 'queued', 'att', '0', 'msg', msg, 'enq', ARGV[8], 'upd', ARGV[8])
redis.call('EXPIRE', KEYS[4], ARGV[10])
redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[10])
return {ARGV[1], 'queued'}
