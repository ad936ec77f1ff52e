-- queue_extend.lua: extend the leases of a worker's running deliveries by resetting
-- their idle time (XCLAIM ... JUSTID), each only while the worker still holds it.
--
-- KEYS[1]  job stream
-- KEYS[1+i] job hash of delivery i
-- ARGV[1]  consumer group
-- ARGV[2]  consumer name
-- ARGV[1+2i], ARGV[2+2i]  entry id and token of delivery i (i from 1)
--
-- Reply: one integer per delivery: 1 extended, 0 lost (another worker holds it now).
local out = {}
local n = (#ARGV - 2) / 2
for i = 1, n do
  local entry, tok = ARGV[1 + 2 * i], ARGV[2 + 2 * i]
  if redis.call('HGET', KEYS[1 + i], 'tok') == tok then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, entry, 'JUSTID')
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
