-- queue_claim.lua: start the deliveries a worker's blocking read (XREADGROUP) returned:
-- hand each a fresh fencing token, or settle entries that cannot run. (Entries taken
-- over from dead workers are started by queue_housekeep.lua, and a busy worker's reads by
-- queue_complete.lua, in the calls that take them.) Runs after queue_claimlib.lua.
--
-- KEYS[1]  job stream
-- KEYS[2]  dead-letter stream
-- KEYS[3]  fencing token counter
-- KEYS[3+i] job hash of delivery i
-- ARGV[1]  consumer group
-- ARGV[2]  now, Unix ms
-- ARGV[3]  consumer name (unused: XREADGROUP delivered the entries to it)
-- ARGV[4]  delivery cap: a job delivered this many times is dead-lettered instead
-- ARGV[5]  job TTL, seconds
-- ARGV[6]  dead job TTL, seconds
-- ARGV[7]  dead-letter stream MAXLEN bound
-- ARGV[6+2i], ARGV[7+2i]  entry id and job id of delivery i (i from 1)
--
-- Reply: one array per delivery, as claim in queue_claimlib.lua appends them.
local c = {stream = KEYS[1], dead = KEYS[2], fence = KEYS[3], group = ARGV[1], now = ARGV[2],
  cap = tonumber(ARGV[4]), jobTTL = ARGV[5], deadTTL = ARGV[6], deadMax = ARGV[7]}
local todo = {}
for i = 1, (#ARGV - 7) / 2 do
  todo[i] = {ARGV[6 + 2 * i], ARGV[7 + 2 * i], KEYS[3 + i]}
end
local out, acks = {}, {}
claim(c, todo, out, acks)
ackAll(c, acks)
return out
