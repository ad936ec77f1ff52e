-- rank.lua is not a script of its own: lua.go puts it in front of read.lua and write.lua.
-- It finds the rank of a sorted-set position under the board's ranking.

-- encOf returns the value encoding at the start of a sorted-set member.
local function encOf(zm)
  if string.sub(zm, 1, 1) == '1' then return '1' end
  return string.sub(zm, 1, string.find(zm, '[!~]', 6))
end

-- rankAt returns the 1-based rank of the entry at 0-based position pos of sorted set z
-- (counted from the leading end: from the highest when desc), whose value encoding is
-- enc and whose score is score. ranking: 'o' ordinal, 'c' competition, 'd' dense (d is
-- the sorted set of distinct values).
local function rankAt(z, d, desc, ranking, pos, enc, score)
  if ranking == 'c' then
    -- Equal values are contiguous and share a score. Entries with a better score are
    -- all ahead of the first equal one; search the rest, which is short unless many
    -- values collide in float64.
    local lo
    if desc then
      lo = redis.call('ZCOUNT', z, '(' .. score, '+inf')
    else
      lo = redis.call('ZCOUNT', z, '-inf', '(' .. score)
    end
    local hi = pos
    -- Values rarely collide in float64, so the first entry of the score usually has
    -- this value already: then it is the answer, in one read instead of a search.
    if lo < hi then
      local m
      if desc then m = redis.call('ZREVRANGE', z, lo, lo) else m = redis.call('ZRANGE', z, lo, lo) end
      if encOf(m[1]) == enc then return lo + 1 end
      lo = lo + 1
    end
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      local m
      if desc then m = redis.call('ZREVRANGE', z, mid, mid) else m = redis.call('ZRANGE', z, mid, mid) end
      if encOf(m[1]) == enc then hi = mid else lo = mid + 1 end
    end
    return lo + 1
  elseif ranking == 'd' then
    local r
    if desc then r = redis.call('ZREVRANK', d, enc) else r = redis.call('ZRANK', d, enc) end
    return (r or 0) + 1
  end
  return pos + 1
end
