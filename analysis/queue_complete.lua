-- queue_complete.lua: settle the deliveries a worker has finished with, each only if the
-- worker still holds its lease (its fencing token is the job's current one).
--
-- KEYS[1]  job stream
-- KEYS[2]  delayed sorted set
-- KEYS[3]  dead-letter stream
-- KEYS[3+i] job hash of delivery i
-- ARGV[1]  consumer group
-- ARGV[2]  now, Unix ms
-- ARGV[3]  job TTL, seconds
-- ARGV[4]  dead job TTL, seconds
-- ARGV[5]  dead-letter stream MAXLEN bound
-- ARGV[6]  job stream MAXLEN bound
-- then 6 per delivery i: job id, entry id, token, outcome, due Unix ms, error text.
-- Outcomes: "done" and "failed" (finished; a rerun requested meanwhile requeues the job),
-- "retry" (into the delayed set until due), "dead" (to the dead-letter stream),
-- "release" (handed back: requeued at once, the delivery not counted).
--
-- Reply: one integer per delivery: 0 stale (the lease was lost: nothing touched),
-- 1 settled, 2 settled and requeued for a rerun.
local out = {}
local n = (#ARGV - 6) / 6
for i = 1, n do
  local b = 6 + (i - 1) * 6
  local id, entry, tok, outcome, due, err = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5], ARGV[b + 6]
  local jk = KEYS[3 + i]
  local f = redis.call('HMGET', jk, 'tok', 'st', 'msg', 'rerun', 'wm', 'rwm', 'att', 'ex', 'sym', 'iv', 'an')
  if f[1] ~= tok or f[2] ~= 'running' or f[3] ~= entry then
    out[i] = 0
  else
    redis.call('XACK', KEYS[1], ARGV[1], entry)
    redis.call('XDEL', KEYS[1], entry)
    local wm = f[5]
    if f[4] == '1' and tonumber(f[6] or '0') > tonumber(wm or '0') then
      wm = f[6]
    end
    out[i] = 1
    if outcome == 'done' or outcome == 'failed' then
      if f[4] == '1' then
        local m = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[6], '*', 'j', id)
        redis.call('HSET', jk, 'st', 'queued', 'msg', m, 'att', '0', 'rerun', '0', 'wm', wm,
          'last', outcome, 'err', err, 'fin', ARGV[2], 'upd', ARGV[2])
        out[i] = 2
      else
        redis.call('HSET', jk, 'st', outcome, 'err', err, 'fin', ARGV[2], 'upd', ARGV[2])
      end
      redis.call('EXPIRE', jk, ARGV[3])
    elseif outcome == 'retry' then
      redis.call('ZADD', KEYS[2], due, id)
      redis.call('HSET', jk, 'st', 'queued', 'rerun', '0', 'wm', wm, 'err', err, 'due', due, 'upd', ARGV[2])
      redis.call('EXPIRE', jk, ARGV[3])
    elseif outcome == 'release' then
      local m = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[6], '*', 'j', id)
      local att = tonumber(f[7]) - 1
      if att < 0 then att = 0 end
      redis.call('HSET', jk, 'st', 'queued', 'msg', m, 'att', att, 'upd', ARGV[2])
      redis.call('EXPIRE', jk, ARGV[3])
    else
      local d = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'j', id, 'e', err,
        'ex', f[8], 'sym', f[9], 'iv', f[10], 'an', f[11], 'att', f[7], 'at', ARGV[2])
      redis.call('HSET', jk, 'st', 'dead', 'err', err, 'dmsg', d, 'rerun', '0', 'upd', ARGV[2])
      redis.call('EXPIRE', jk, ARGV[4])
    end
  end
end
return out
