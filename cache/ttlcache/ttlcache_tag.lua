-- ttlcache_tag.lua records cache keys under a tag, keeping the tag set bounded.
--
-- KEYS[1]  the tag's sorted set: cache key → expiry (Unix ms)
-- ARGV[1]  now, Unix ms: entries that expired by then are dropped
-- ARGV[2]  the keys' expiry, Unix ms
-- ARGV[3]  TTL ms of the entries: the tag set lives at least as long
-- ARGV[4]  most keys the tag may hold
-- ARGV[5..] cache keys
--
-- Reply: the keys dropped to stay within the bound, soonest to expire first (never one
-- of ARGV[5..]). The caller
-- must delete them: a live value the tag no longer lists would escape invalidation.

local tag = KEYS[1]
redis.call('ZREMRANGEBYSCORE', tag, '-inf', ARGV[1])
for i = 5, #ARGV do
  redis.call('ZADD', tag, ARGV[2], ARGV[i])
end
local dropped = {}
local excess = redis.call('ZCARD', tag) - tonumber(ARGV[4])
if excess > 0 then
  -- Drop the soonest to expire, but never a key being added now.
  local added = {}
  for i = 5, #ARGV do added[ARGV[i]] = true end
  for _, k in ipairs(redis.call('ZRANGE', tag, 0, excess + #ARGV - 5)) do
    if excess == 0 then break end
    if not added[k] then
      redis.call('ZREM', tag, k)
      dropped[#dropped + 1] = k
      excess = excess - 1
    end
  end
end
if redis.call('PTTL', tag) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', tag, ARGV[3])
end
return dropped
