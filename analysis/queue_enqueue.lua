-- queue_enqueue.lua: for each request, add a job for its target, or coalesce it into the
-- target's job that is already waiting or running. Requests are applied in order, so a
-- batch may coalesce into a job it created itself.
--
-- KEYS[1]  job stream
-- KEYS[2]  delayed sorted set (jobs waiting for a retry)
-- ARGV[1]  job hash prefix (job id's hash is ARGV[1]..id, same slot)
-- ARGV[2]  now, Unix ms
-- ARGV[3]  queue length bound (stream entries + delayed jobs)
-- ARGV[4]  job TTL, seconds
-- ARGV[5]  job stream MAXLEN hard bound
-- ARGV[6]  coalesce key prefix (a target's key, holding the id of its live job, is
--          ARGV[6]..exchange..':'..symbol..':'..interval..':'..analyzer, same slot)
-- then 6 per request i: new job id, exchange, symbol, interval, analyzer, watermark
-- (Unix ms).
--
-- The keys of each request are built here rather than passed: they share the slot of
-- KEYS[1], and every byte sent costs Redis time (MONITOR formats each argument).
--
-- A new job's hash leaves out its update time: readers default it to the enqueue time.
-- (It keeps att = 0: workers of earlier versions read it as a number when claiming.)
-- The TTL set here runs out at enq + job TTL, and every later change that sets a TTL sets
-- one at least as long, so settling a job finished soon after its enqueue can leave the
-- TTL alone (queue_complete.lua). The fields the claim and settle steps look up come
-- first: a small hash is a list Redis searches from the front.
--
-- Reply: per request {id, how}; how is "queued" (new job), "coalesced" (a waiting job's
-- watermark was raised), "rerun" (the running job will run once more) or "full" (id
-- empty: the queue is at its bound, nothing was written).
local out = {}
local n = (#ARGV - 6) / 6
local bound = tonumber(ARGV[3])
local len = redis.call('XLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2])
for i = 1, n do
  local b = 6 + (i - 1) * 6
  local newid, wm = ARGV[b + 1], ARGV[b + 6]
  local ck = ARGV[6] .. ARGV[b + 2] .. ':' .. ARGV[b + 3] .. ':' .. ARGV[b + 4] .. ':' .. ARGV[b + 5]
  local nk = ARGV[1] .. newid
  -- Below the bound, claim the coalesce key for the new job in the same call that
  -- reads it: when it was free, only the job itself remains to be written.
  local cur, claimed
  if len < bound then
    cur = redis.call('SET', ck, newid, 'NX', 'GET', 'EX', ARGV[4])
    claimed = not cur
  else
    cur = redis.call('GET', ck)
  end
  local res
  if cur then
    local jk = ARGV[1] .. cur
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
      if st == 'queued' then
        if tonumber(wm) > tonumber(f[3] or '0') then
          redis.call('HSET', jk, 'wm', wm)
        end
        res = {cur, 'coalesced'}
      else
        redis.call('HSET', jk, 'rerun', '1')
        if tonumber(wm) > tonumber(f[4] or '0') then
          redis.call('HSET', jk, 'rwm', wm)
        end
        res = {cur, 'rerun'}
      end
    end
  end
  if not res then
    if len >= bound then
      res = {'', 'full'}
    else
      local m = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*', 'j', newid)
      redis.call('HSET', nk, 'st', 'queued', 'msg', m, 'att', '0', 'wm', wm,
        'ex', ARGV[b + 2], 'sym', ARGV[b + 3], 'iv', ARGV[b + 4], 'an', ARGV[b + 5], 'enq', ARGV[2])
      redis.call('EXPIRE', nk, ARGV[4])
      if not claimed then
        redis.call('SET', ck, newid, 'EX', ARGV[4])
      end
      len = len + 1
      res = {newid, 'queued'}
    end
  end
  out[i] = res
end
return out
