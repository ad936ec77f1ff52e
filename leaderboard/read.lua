-- read.lua reads a slice of one window of a board with the rank of its first entry.
--
-- KEYS[1]  z (sorted set), KEYS[2] h (hash), KEYS[3] d (distinct values; Dense only)
-- ARGV[1]  'd' when the highest value leads, 'a' when the lowest does
-- ARGV[2]  ranking: 'o' ordinal, 'c' competition, 'd' dense
-- ARGV[3]  'r': a range of positions ARGV[4]..ARGV[5] (0-based, inclusive)
--          'm': member ARGV[4] with ARGV[5] entries above and below it
--
-- Reply: {count, first rank, first position, member position, entries...}; entries are
-- sorted-set members in rank order, member position is -1 for 'r'. For 'm' when the
-- member is not on the board: {count, 0, 0, -1}.

local z, h, d = KEYS[1], KEYS[2], KEYS[3]
local desc = ARGV[1] == 'd'
local ranking = ARGV[2]
local count = redis.call('ZCARD', z)

local function at(i, j)
  if desc then return redis.call('ZREVRANGE', z, i, j) end
  return redis.call('ZRANGE', z, i, j)
end

local function encOf(zm)
  if string.sub(zm, 1, 1) == '1' then return '1' end
  return string.sub(zm, 1, string.find(zm, '[!~]', 6))
end

local start, stop, pos
if ARGV[3] == 'm' then
  local v = redis.call('HGET', h, ARGV[4])
  if not v then return {count, 0, 0, -1} end
  local zm = string.sub(v, 1, string.find(v, ' ', 1, true) - 1) .. ARGV[4]
  if desc then pos = redis.call('ZREVRANK', z, zm) else pos = redis.call('ZRANK', z, zm) end
  if not pos then return {count, 0, 0, -1} end
  local k = tonumber(ARGV[5])
  start, stop = math.max(0, pos - k), pos + k
else
  start, stop, pos = tonumber(ARGV[4]), tonumber(ARGV[5]), -1
end

local items = at(start, stop)
if #items == 0 then return {count, 0, start, pos} end

local first = start + 1
if ranking ~= 'o' then
  local e = encOf(items[1])
  if ranking == 'c' then
    -- Equal values are contiguous: find the first position holding this value.
    local lo, hi = 0, start
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if encOf(at(mid, mid)[1]) == e then hi = mid else lo = mid + 1 end
    end
    first = lo + 1
  else
    local r
    if desc then r = redis.call('ZREVRANK', d, e) else r = redis.call('ZRANK', d, e) end
    first = (r or 0) + 1
  end
end

local reply = {count, first, start, pos}
for _, zm in ipairs(items) do reply[#reply + 1] = zm end
return reply
