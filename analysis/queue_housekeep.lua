-- queue_housekeep.lua: a worker's periodic upkeep in one call: move the retries that are
-- due from the delayed set to the stream, then take over up to ARGV[5] deliveries whose
-- lease expired (XAUTOCLAIM, idle at least ARGV[4] ms: their worker died or stalled)
-- and start them as queue_claimlib.lua's claim does. Folding both into one script keeps
-- an idle worker's load on Redis at one call per poll besides its blocking read, however
-- short the lease. Runs after queue_claimlib.lua.
--
-- KEYS[1]  job stream
-- KEYS[2]  delayed sorted set
-- KEYS[3]  dead-letter stream
-- KEYS[4]  fencing token counter
-- ARGV[1]  consumer group
-- ARGV[2]  now, Unix ms
-- ARGV[3]  consumer name
-- ARGV[4]  lease, ms: the idle time after which a delivery is taken over
-- ARGV[5]  most deliveries to take over; 0 takes none
-- ARGV[6]  most due retries to move; 0 moves none
-- ARGV[7]  delivery cap: a job delivered this many times is dead-lettered instead
-- ARGV[8]  job TTL, seconds
-- ARGV[9]  dead job TTL, seconds
-- ARGV[10] dead-letter stream MAXLEN bound
-- ARGV[11] job stream MAXLEN bound
-- ARGV[12] job hash prefix (a job's hash is ARGV[12]..id, same slot)
--
-- Reply: {moved, taken, trimmed, claimed, nogroup}: retries moved to the stream;
-- deliveries taken over; pending entries XAUTOCLAIM found deleted from the stream (it
-- drops them from the group); one array per delivery taken over, as claim appends them
-- (a malformed entry is dead-lettered and reported as {"dead", entry, ""}); 1 when the
-- consumer group does not exist (nothing was taken over), else 0.
local c = {stream = KEYS[1], dead = KEYS[3], fence = KEYS[4], group = ARGV[1], now = ARGV[2],
  cap = tonumber(ARGV[7]), jobTTL = ARGV[8], deadTTL = ARGV[9], deadMax = ARGV[10]}
local moved = 0
if tonumber(ARGV[6]) > 0 then
  local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, ARGV[6])
  for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[2], id)
    local jk = ARGV[12] .. id
    if redis.call('HGET', jk, 'st') == 'queued' then
      local m = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[11], '*', 'j', id)
      redis.call('HSET', jk, 'msg', m, 'upd', ARGV[2])
      moved = moved + 1
    end
  end
end
local claimed, acks, taken, trimmed, nogroup = {}, {}, 0, 0, 0
if tonumber(ARGV[5]) > 0 then
  local r = redis.pcall('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[3], ARGV[4], '0-0', 'COUNT', ARGV[5])
  if type(r) == 'table' and r.err then
    if string.sub(r.err, 1, 7) == 'NOGROUP' then
      nogroup = 1
    else
      return r
    end
  elseif type(r) == 'table' then
    taken = #r[2]
    if r[3] then
      trimmed = #r[3]
    end
    claim(c, intake(c, r[2], ARGV[12], claimed, acks), claimed, acks)
  end
end
ackAll(c, acks)
return {moved, taken, trimmed, claimed, nogroup}
