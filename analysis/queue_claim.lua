-- queue_claim.lua: start the deliveries a worker just read (XREADGROUP) or reclaimed
-- (XAUTOCLAIM): hand each a fresh fencing token, or settle entries that cannot run.
--
-- KEYS[1]  job stream
-- KEYS[2]  dead-letter stream
-- KEYS[3]  fencing token counter
-- KEYS[3+i] job hash of delivery i
-- ARGV[1]  consumer group
-- ARGV[2]  now, Unix ms
-- ARGV[3]  consumer name
-- ARGV[4]  delivery cap: a job delivered this many times is dead-lettered instead
-- ARGV[5]  job TTL, seconds
-- ARGV[6]  dead job TTL, seconds
-- ARGV[7]  dead-letter stream MAXLEN bound
-- ARGV[6+2i], ARGV[7+2i]  entry id and job id of delivery i (i from 1)
--
-- Reply: one array per delivery: {"ok", token, exchange, symbol, interval, analyzer,
-- watermark, attempt} to run it; {"dead", reason} when it was dead-lettered (cap reached
-- or job record gone); {"skip"} when the entry is not the job's current one (acked and
-- deleted).
local out = {}
local n = (#ARGV - 7) / 2
for i = 1, n do
  local entry, id = ARGV[6 + 2 * i], ARGV[7 + 2 * i]
  local jk = KEYS[3 + i]
  local f = redis.call('HMGET', jk, 'st', 'msg', 'att', 'ex', 'sym', 'iv', 'an', 'wm')
  local reason
  if not f[1] then
    reason = 'analysis: job record expired or missing'
  elseif f[2] ~= entry or (f[1] ~= 'queued' and f[1] ~= 'running') then
    redis.call('XACK', KEYS[1], ARGV[1], entry)
    redis.call('XDEL', KEYS[1], entry)
    out[i] = {'skip'}
  elseif tonumber(f[3]) >= tonumber(ARGV[4]) then
    reason = 'analysis: delivered ' .. f[3] .. ' times without completing'
  else
    local tok = redis.call('INCR', KEYS[3])
    local att = tonumber(f[3]) + 1
    redis.call('HSET', jk, 'st', 'running', 'tok', tok, 'att', att, 'cons', ARGV[3], 'upd', ARGV[2])
    redis.call('EXPIRE', jk, ARGV[5])
    out[i] = {'ok', tok, f[4], f[5], f[6], f[7], f[8], att}
  end
  if reason then
    redis.call('XACK', KEYS[1], ARGV[1], entry)
    redis.call('XDEL', KEYS[1], entry)
    local d = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', 'j', id, 'e', reason,
      'ex', f[4] or '', 'sym', f[5] or '', 'iv', f[6] or '', 'an', f[7] or '', 'att', f[3] or '0', 'at', ARGV[2])
    if f[1] then
      redis.call('HSET', jk, 'st', 'dead', 'err', reason, 'dmsg', d, 'upd', ARGV[2])
      redis.call('EXPIRE', jk, ARGV[6])
    end
    out[i] = {'dead', reason}
  end
end
return out
