-- session_create.lua creates a session and evicts the user's oldest sessions past the cap.
--
-- KEYS[1]  the user's session index (sorted set: id → created ms, raised when needed to
--          stay above the newest entry, so the order is the order of creation even for
--          sessions created in the same millisecond)
-- KEYS[2]  the new session's hash
-- ARGV[1]  session id
-- ARGV[2]  created, Unix ms
-- ARGV[3]  TTL ms (of the session, and at least that of the index)
-- ARGV[4]  most sessions the user may hold
-- ARGV[5]  user
-- ARGV[6]  session data (JSON)
-- ARGV[7]  key prefix of the user's sessions, "<prefix>:user:{<user>}:session:"; the
--          session keys it names share KEYS[1]'s hash tag
--
-- Reply: the ids evicted (oldest first). Index entries whose session has expired are
-- dropped first, so they do not count against the cap.
--
-- Session ids are "<user>.<random>"; the key of id is ARGV[7] .. <random>.

local index, key = KEYS[1], KEYS[2]
local id, created, ttl, cap = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local prefix = ARGV[7]

local function keyOf(sid)
  return prefix .. string.sub(sid, #ARGV[5] + 2)
end

for _, sid in ipairs(redis.call('ZRANGE', index, 0, -1)) do
  if redis.call('EXISTS', keyOf(sid)) == 0 then redis.call('ZREM', index, sid) end
end

redis.call('HSET', key, 'user', ARGV[5], 'data', ARGV[6], 'created', created)
redis.call('PEXPIRE', key, ttl)
local score = tonumber(created)
local newest = redis.call('ZRANGE', index, -1, -1, 'WITHSCORES')
if newest[2] and tonumber(newest[2]) >= score then score = tonumber(newest[2]) + 1 end
redis.call('ZADD', index, score, id)

-- Evict the oldest, never the new one.
local evicted = {}
local excess = redis.call('ZCARD', index) - cap
if excess > 0 then
  for _, sid in ipairs(redis.call('ZRANGE', index, 0, excess)) do
    if #evicted == excess then break end
    if sid ~= id then
      redis.call('DEL', keyOf(sid))
      redis.call('ZREM', index, sid)
      evicted[#evicted + 1] = sid
    end
  end
end
if redis.call('PTTL', index) < ttl then redis.call('PEXPIRE', index, ttl) end
return evicted
