-- set.lua writes or deletes a flag definition and records the change, atomically.
--
-- KEYS[1]  hash: flag key → JSON definition
-- KEYS[2]  stream of changes
-- ARGV[1]  flag key
-- ARGV[2]  new JSON definition, or '' to delete
-- ARGV[3]  who made the change
-- ARGV[4]  when, Unix ms (the caller's clock)
-- ARGV[5]  most changes the stream keeps (MAXLEN ~)
-- ARGV[6]  most flags the hash may hold
--
-- Reply: {status, before}; status 1 written (or deleted), 0 unchanged (nothing
-- recorded), -1 refused: a new flag past the limit, -2 delete of a missing flag.
-- before is the previous definition or ''.

local before = redis.call('HGET', KEYS[1], ARGV[1]) or ''
local after = ARGV[2]
if before == after then
  if after == '' then return {-2, ''} end
  return {0, before}
end
if after == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  if before == '' and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[6]) then
    return {-1, ''}
  end
  redis.call('HSET', KEYS[1], ARGV[1], after)
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*',
  'key', ARGV[1], 'who', ARGV[3], 'when', ARGV[4], 'before', before, 'after', after)
return {1, before}
