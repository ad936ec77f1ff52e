-- queue_complete.lua: settle the deliveries a worker has finished with, each only if the
-- worker still holds its lease (its fencing token is the job's current one); then, in the
-- same call, read and claim up to ARGV[8] new entries for the worker, so that a busy
-- worker needs one round trip and one script per batch. Runs after queue_claimlib.lua.
--
-- KEYS[1]  job stream
-- KEYS[2]  delayed sorted set
-- KEYS[3]  dead-letter stream
-- KEYS[4]  fencing token counter
-- ARGV[1]  consumer group
-- ARGV[2]  now, Unix ms
-- ARGV[3]  job TTL, seconds
-- ARGV[4]  dead job TTL, seconds
-- ARGV[5]  dead-letter stream MAXLEN bound
-- ARGV[6]  job stream MAXLEN bound
-- ARGV[7]  consumer name
-- ARGV[8]  new entries to read (XREADGROUP ... >) and claim; 0 reads none
-- ARGV[9]  delivery cap: a job delivered this many times is dead-lettered instead
-- ARGV[10] job hash prefix (job id's hash is ARGV[10]..id, same slot; built here rather
--          than passed, as every byte sent costs Redis time)
-- then 6 per delivery i: job id, entry id, token, outcome, due Unix ms, error text.
-- Outcomes: "done" and "failed" (finished; a rerun requested meanwhile requeues the job),
-- "retry" (into the delayed set until due), "dead" (to the dead-letter stream),
-- "release" (handed back: requeued at once, the delivery not counted).
--
-- Reply: {settled, claimed}. settled has one integer per delivery: 0 stale (the lease
-- was lost: nothing touched), 1 settled, 2 settled and requeued for a rerun. claimed has
-- one array per entry read, as claim in queue_claimlib.lua appends them; a malformed
-- entry (not one field j=<job id>) is dead-lettered at once and reported as
-- {"dead", entry, ""}. A missing consumer group reads nothing.
local c = {stream = KEYS[1], dead = KEYS[3], fence = KEYS[4], group = ARGV[1], now = ARGV[2],
  jobTTL = ARGV[3], deadTTL = ARGV[4], deadMax = ARGV[5], cap = tonumber(ARGV[9])}
local settled, acks = {}, {}
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, (#ARGV - 10) / 6 do
  local b = 10 + (i - 1) * 6
  local id, entry, tok, outcome, due, err = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5], ARGV[b + 6]
  local jk = ARGV[10] .. id
  local f = redis.call('HMGET', jk, 'tok', 'st', 'msg', 'rerun', 'enq')
  local enq = f[5]
  if f[1] ~= tok or f[2] ~= 'running' or f[3] ~= entry then
    settled[i] = 0
  else
    acks[#acks + 1] = entry
    local plain = (outcome == 'done' or outcome == 'failed') and f[4] ~= '1'
    if not plain then
      -- Only requeueing and dead-lettering need the rest of the record.
      local g = redis.call('HMGET', jk, 'wm', 'rwm', 'att', 'ex', 'sym', 'iv', 'an')
      for j = 1, 7 do
        f[4 + j] = g[j]
      end
    end
    local wm = f[5]
    if f[4] == '1' and tonumber(f[6] or '0') > tonumber(wm or '0') then
      wm = f[6]
    end
    settled[i] = 1
    if outcome == 'done' or outcome == 'failed' then
      if f[4] == '1' then
        local m = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[6], '*', 'j', id)
        redis.call('HSET', jk, 'st', 'queued', 'msg', m, 'att', '0', 'rerun', '0', 'wm', wm,
          'last', outcome, 'err', err, 'fin', ARGV[2], 'upd', ARGV[2])
        settled[i] = 2
        redis.call('EXPIRE', jk, ARGV[3])
      else
        redis.call('HSET', jk, 'st', outcome, 'err', err, 'fin', ARGV[2], 'upd', ARGV[2])
        -- A record whose TTL still has nine tenths of the job TTL to run (set by its
        -- enqueue moments ago: it runs out at enq + job TTL, see queue_enqueue.lua)
        -- keeps it: one command less per job on the hot path.
        if not enq or (now - tonumber(enq)) * 10 > ttl * 1000 then
          redis.call('EXPIRE', jk, ARGV[3])
        end
      end
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

local claimed = {}
local want = tonumber(ARGV[8])
if want > 0 then
  local r = redis.pcall('XREADGROUP', 'GROUP', ARGV[1], ARGV[7], 'COUNT', want, 'STREAMS', KEYS[1], '>')
  if type(r) == 'table' and r[1] and r[1][2] then
    claim(c, intake(c, r[1][2], ARGV[10], claimed, acks), claimed, acks)
  end
end
ackAll(c, acks)
return {settled, claimed}
