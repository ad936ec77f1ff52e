-- write.lua sets one member's value in the current period of every window of a board,
-- atomically. All keys carry the board's hash tag.
--
-- KEYS[1]   the board's arrival counter
-- KEYS[2]   the dedup key of this write (ignored unless ARGV[6] > 0)
-- KEYS[4i-1], KEYS[4i], KEYS[4i+1], KEYS[4i+2]   window i: z (sorted set), h (hash),
--           d (distinct values, Dense only), c (value counts, Dense only)
-- ARGV[1]   mode: 's' set, 'b' set if better, 'c' compare-and-set (every window's current
--           value encoding must equal its expected one, else nothing is written)
-- ARGV[2]   member name
-- ARGV[3]   'd' when the highest value leads, 'a' when the lowest does
-- ARGV[4]   '1' for a Dense board (keep d and c), else '0'
-- ARGV[5]   the most members a window keeps; the last-ranked are dropped past it
-- ARGV[6]   dedup TTL in ms; > 0 makes the write happen at most once per dedup key
-- ARGV[7+5(i-1) .. 11+5(i-1)]  window i: TTL ms, value encoding, score, canonical decimal,
--           expected current encoding (mode 'c'; '' = absent)
--
-- Reply: {status, windows changed}; status 1 written, 0 compare-and-set conflict,
-- 2 duplicate (dedup key present).
--
-- A member's sorted-set entry is <encoding><15-digit arrival><name>: the score ranks, and
-- equal scores (equal float64s) are ordered by the exact encoding, then by arrival. The
-- arrival is complemented on high-first boards so that the earlier arrival sorts higher.
-- A window whose value does not change keeps its arrival.

local mode, member = ARGV[1], ARGV[2]
local desc, dense = ARGV[3] == 'd', ARGV[4] == '1'
local maxn = tonumber(ARGV[5])
local dedupttl = tonumber(ARGV[6])
local nwin = (#KEYS - 2) / 4

if dedupttl > 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  return {2, 0}
end

-- Byte-wise: Lua's < on strings uses strcoll, which follows the server's locale.
local function less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

-- hash value "<enc><arrival> <decimal>" → "<enc><arrival>"
local function prefixOf(v)
  return string.sub(v, 1, string.find(v, ' ', 1, true) - 1)
end

local function encOf(prefix)
  return string.sub(prefix, 1, #prefix - 15)
end

local function uncount(d, c, enc)
  if redis.call('HINCRBY', c, enc, -1) <= 0 then
    redis.call('HDEL', c, enc)
    redis.call('ZREM', d, enc)
  end
end

local olds = {}
for i = 1, nwin do
  local v = redis.call('HGET', KEYS[4 * i], member)
  olds[i] = v
  if mode == 'c' then
    local e = ''
    if v then e = encOf(prefixOf(v)) end
    if e ~= ARGV[11 + 5 * (i - 1)] then
      return {0, 0}
    end
  end
end

local seq
local changed = 0
local maxttl = 0
for i = 1, nwin do
  local z, h, d, c = KEYS[4 * i - 1], KEYS[4 * i], KEYS[4 * i + 1], KEYS[4 * i + 2]
  local b = 6 + 5 * (i - 1)
  local ttl, enc, score, dec = tonumber(ARGV[b + 1]), ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local old = olds[i]
  local oldPrefix, oldEnc
  if old then
    oldPrefix = prefixOf(old)
    oldEnc = encOf(oldPrefix)
  end
  local write = true
  if old and oldEnc == enc then
    write = false
  elseif old and mode == 'b' then
    if desc then write = less(oldEnc, enc) else write = less(enc, oldEnc) end
  end
  if write then
    if old then
      redis.call('ZREM', z, oldPrefix .. member)
      if dense then uncount(d, c, oldEnc) end
    end
    if not seq then seq = redis.call('INCR', KEYS[1]) end
    local s = seq
    if desc then s = 999999999999999 - seq end
    local p = enc .. string.format('%015.0f', s)
    redis.call('ZADD', z, score, p .. member)
    redis.call('HSET', h, member, p .. ' ' .. dec)
    if dense then
      redis.call('HINCRBY', c, enc, 1)
      redis.call('ZADD', d, score, enc)
    end
    changed = changed + 1
    local n = redis.call('ZCARD', z)
    if n > maxn then
      local worst
      if desc then
        worst = redis.call('ZRANGE', z, 0, n - maxn - 1)
      else
        worst = redis.call('ZREVRANGE', z, 0, n - maxn - 1)
      end
      for _, w in ipairs(worst) do
        local at = 2
        if string.sub(w, 1, 1) ~= '1' then at = string.find(w, '[!~]', 6) + 1 end
        local m = string.sub(w, at + 15)
        redis.call('ZREM', z, w)
        redis.call('HDEL', h, m)
        if dense then uncount(d, c, string.sub(w, 1, at - 1)) end
      end
    end
  end
  redis.call('PEXPIRE', z, ttl)
  redis.call('PEXPIRE', h, ttl)
  if dense then
    redis.call('PEXPIRE', d, ttl)
    redis.call('PEXPIRE', c, ttl)
  end
  if ttl > maxttl then maxttl = ttl end
end
-- The counter outlives every window key: its TTL is the longest of this write's, and
-- each write's longest only grows.
redis.call('PEXPIRE', KEYS[1], maxttl)
if dedupttl > 0 then
  redis.call('SET', KEYS[2], '1', 'PX', dedupttl)
end
return {1, changed}
