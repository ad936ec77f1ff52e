-- userstate_cas.lua replaces a user's state document if its version is the expected one.
--
-- KEYS[1]  the user's state hash: v (version), doc (JSON), updated (Unix ms)
-- ARGV[1]  expected version: 0 when the document must not exist yet
-- ARGV[2]  the new document
-- ARGV[3]  updated, Unix ms
-- ARGV[4]  TTL ms
--
-- Reply: {1, new version} when written; {0, current version} on a conflict (nothing
-- written; 0 means there is no document).

local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if cur ~= tonumber(ARGV[1]) then
  return {0, cur}
end
local v = cur + 1
redis.call('HSET', KEYS[1], 'v', v, 'doc', ARGV[2], 'updated', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1, v}
