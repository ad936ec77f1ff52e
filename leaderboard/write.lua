-- write.lua sets or adds to members' values in the current period of every window of a
-- board, atomically, and can rank each member in one of them afterwards. It applies a
-- batch of writes of one board in order, each exactly as if it ran alone (a later one
-- sees the earlier ones), so that concurrent writers share one call. All keys carry the
-- board's hash tag. lua.go puts decimal.lua and rank.lua in front of it.
--
-- KEYS[1]   the board's arrival counter
-- KEYS[4i-2], KEYS[4i-1], KEYS[4i], KEYS[4i+1]   window i: z (sorted set), h (hash),
--           d (distinct values, Dense only), c (value counts, Dense only)
-- KEYS[2+4n ...]   the dedup keys of the writes that have one (n windows)
-- ARGV[1]   'd' when the highest value leads, 'a' when the lowest does
-- ARGV[2]   ranking: 'o' ordinal, 'c' competition, 'd' dense (keep d and c)
-- ARGV[3]   the most members a window keeps; the last-ranked are dropped past it
-- ARGV[4]   '1': the first write sets every window's TTL it writes; '0': a write sets
--           only the TTLs of keys it may have created (a member new to the window, a
--           distinct value new to a Dense board)
-- ARGV[5]   dedup TTL in ms
-- ARGV[6]   n, the number of windows
-- ARGV[6+i] window i: TTL ms
-- then 5 per write: mode ('s' set, 'b' set if better, 'i' increment: add the value to
-- each window's current value, a missing one counting as zero, exactly), member name,
-- value encoding (the value, or the delta for 'i'), the window to rank the member in
-- afterwards (1-based; 0 for none), the index in KEYS of its dedup key (0 for none: with
-- one, the write happens at most once per dedup key)
--
-- Reply: one per write: {1, windows changed, first window's value, rank, ranked window's
-- value} when written (rank 0 and value '' when not asked for, or when the member was
-- dropped past the cap); {2} duplicate (dedup key present); {3, i} when the sum in window
-- i is outside the value limits, and nothing of that write was written. Values are
-- canonical decimals.
--
-- A member's sorted-set entry is <encoding><15-digit arrival><name>: the score ranks, and
-- equal scores (equal float64s) are ordered by the exact encoding, then by arrival. The
-- arrival is complemented on high-first boards so that the earlier arrival sorts higher.
-- A window whose value does not change keeps its arrival.
--
-- Commands per window written, for a member already there: HGET, ZADD, ZREM, HSET. The new
-- entry is added before the old one goes, so that a window never empties and comes back
-- without its TTL; a period's TTL is an absolute end, set when a key is created; the
-- all-time TTL is refreshed when the caller asks (ARGV[4]). The cap is checked only when
-- a member joins, the only time a window grows.

local desc, ranking = ARGV[1] == 'd', ARGV[2]
local dense = ranking == 'd'
local maxn = tonumber(ARGV[3])
local refreshFirst = ARGV[4] == '1'
local dedupttl = ARGV[5]
local nwin = tonumber(ARGV[6])
local call, sub, find, format = redis.call, string.sub, string.find, string.format

-- Byte-wise: Lua's < on strings uses strcoll, which follows the server's locale.
local function less(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function uncount(d, c, enc)
  if call('HINCRBY', c, enc, -1) <= 0 then
    call('HDEL', c, enc)
    call('ZREM', d, enc)
  end
end

-- stringOf gives a new value's canonical decimal, computed once.
local function stringOf(nv)
  if not nv.str then nv.str = decString(nv[2], nv[3], nv[4]) end
  return nv.str
end

-- valueOf returns the canonical decimal a window holds after a write.
local function valueOf(f)
  if f[3] then return stringOf(f[3]) end
  local s, dg, e = decDecode(f[2])
  return decString(s, dg, e)
end

-- The TTL of the arrival counter: the longest of the windows', so that it outlives them
-- all (a write that sets a window's TTL sets the counter's, and each write's longest
-- only grows).
local counterTTL = 0
for i = 1, nwin do
  local ttl = tonumber(ARGV[6 + i])
  if ttl > counterTTL then counterTTL = ttl end
end

-- writeOne is one write. It derives each string once per distinct value, not once per
-- window: the windows of a member usually hold one value (all of them within its first
-- day), and then one parse, one sum and one set of new strings serve all of them.
local function writeOne(mode, member, venc, rankwin, dedupKey, refresh)
  if dedupKey and call('EXISTS', dedupKey) == 1 then
    return {2}
  end

  -- An old value, from the hash value "<enc><arrival> <decimal>": {prefix
  -- "<enc><arrival>", enc, sorted-set member}, parsed once per distinct hash value.
  local parsed = {}
  local function parse(v)
    local o = parsed[v]
    if not o then
      local prefix = sub(v, 1, find(v, ' ', 1, true) - 1)
      o = {prefix, sub(prefix, 1, #prefix - 15), prefix .. member}
      parsed[v] = o
    end
    return o
  end

  -- The new value of each window: {enc, sign, digits, e}. Every sum is computed, and
  -- checked against the limits, before anything is written; once per distinct old value.
  local olds, news, memo = {}, {}, {}
  local vs, vd, ve = decDecode(venc)
  local given = {venc, vs, vd, ve}
  for i = 1, nwin do
    local v = call('HGET', KEYS[4 * i - 1], member)
    local o = v and parse(v)
    olds[i] = o
    if mode == 'i' then
      local oe = o and o[2] or '1'
      local nv = memo[oe]
      if not nv then
        local s, dg, e = decDecode(oe)
        s, dg, e = decAdd(s, dg, e, vs, vd, ve)
        if not s then return {3, i} end
        nv = {decEncode(s, dg, e), s, dg, e}
        memo[oe] = nv
      end
      news[i] = nv
    else
      news[i] = given
    end
  end

  -- entryOf fills in, once per new value, what writing it takes: nv.p the prefix
  -- "<enc><arrival>" (one arrival for the whole write), nv.zm the sorted-set member,
  -- nv.hv the hash value, nv.score the score.
  local seq
  local function entryOf(nv)
    if nv.p then return end
    if not seq then seq = call('INCR', KEYS[1]) end
    local s = seq
    if desc then s = 999999999999999 - seq end
    nv.p = nv[1] .. format('%015.0f', s)
    nv.zm = nv.p .. member
    nv.hv = nv.p .. ' ' .. stringOf(nv)
    nv.score = decScore(nv[2], nv[3], nv[4])
  end

  local changed = 0
  local ttlset = false
  -- final[i]: what window i holds after the write: {prefix, enc, new value or nil,
  -- score or nil, sorted-set member}.
  local final = {}
  for i = 1, nwin do
    local z, h = KEYS[4 * i - 2], KEYS[4 * i - 1]
    local fresh, freshDense = refresh, refresh
    local nv = news[i]
    local enc = nv[1]
    local o = olds[i]
    local oldEnc = o and o[2]
    local write = true
    if o and oldEnc == enc then
      write = false
    elseif o and mode == 'b' then
      if desc then write = less(oldEnc, enc) else write = less(enc, oldEnc) end
    end
    if write then
      entryOf(nv)
      if seq == 1 then ttlset = true end
      call('ZADD', z, nv.score, nv.zm)
      if o then call('ZREM', z, o[3]) else fresh = true end
      call('HSET', h, member, nv.hv)
      if dense then
        local d, c = KEYS[4 * i], KEYS[4 * i + 1]
        if call('HINCRBY', c, enc, 1) == 1 then
          call('ZADD', d, nv.score, enc)
          freshDense = true
        end
        if o then uncount(d, c, oldEnc) end
      end
      final[i] = {nv.p, enc, nv, nv.score, nv.zm}
      changed = changed + 1
      local n = maxn
      if not o then n = call('ZCARD', z) end
      if n > maxn then
        local worst
        if desc then
          worst = call('ZRANGE', z, 0, n - maxn - 1)
        else
          worst = call('ZREVRANGE', z, 0, n - maxn - 1)
        end
        for _, w in ipairs(worst) do
          local at = 2
          if sub(w, 1, 1) ~= '1' then at = find(w, '[!~]', 6) + 1 end
          local m = sub(w, at + 15)
          call('ZREM', z, w)
          call('HDEL', h, m)
          if dense then uncount(KEYS[4 * i], KEYS[4 * i + 1], sub(w, 1, at - 1)) end
        end
      end
    elseif o and oldEnc ~= enc then
      -- 'b' and not better: the window keeps its old value.
      final[i] = {o[1], oldEnc, nil, nil, o[3]}
    else
      final[i] = {o[1], enc, nv, nil, o[3]}
    end
    if fresh or (dense and freshDense) then
      local ttl = tonumber(ARGV[6 + i])
      if fresh then
        call('PEXPIRE', z, ttl)
        call('PEXPIRE', h, ttl)
      end
      if dense and freshDense then
        call('PEXPIRE', KEYS[4 * i], ttl)
        call('PEXPIRE', KEYS[4 * i + 1], ttl)
      end
      ttlset = true
    end
  end
  if ttlset then call('PEXPIRE', KEYS[1], counterTTL) end
  if dedupKey then call('SET', dedupKey, '1', 'PX', dedupttl) end

  local rank, rankValue = 0, ''
  if rankwin > 0 then
    local f = final[rankwin]
    local z, d = KEYS[4 * rankwin - 2], KEYS[4 * rankwin]
    local zm = f[5]
    local pos
    if desc then pos = call('ZREVRANK', z, zm) else pos = call('ZRANK', z, zm) end
    if pos then
      local score = f[4]
      if ranking == 'c' and not score then score = call('ZSCORE', z, zm) end
      rank = rankAt(z, d, desc, ranking, pos, f[2], score)
      rankValue = valueOf(f)
    end
  end
  return {1, changed, valueOf(final[1]), rank, rankValue}
end

local out = {}
local base = 6 + nwin
for j = 1, (#ARGV - base) / 5 do
  local b = base + 5 * (j - 1)
  local dk = tonumber(ARGV[b + 5])
  local dedupKey = nil
  if dk > 0 then dedupKey = KEYS[dk] end
  out[j] = writeOne(ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], tonumber(ARGV[b + 4]), dedupKey,
    refreshFirst and j == 1)
end
return out
