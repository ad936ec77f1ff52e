-- read.lua reads a slice of one window of a board with the rank of its first entry.
-- lua.go puts rank.lua in front of it.
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

local items
if desc then
  items = redis.call('ZREVRANGE', z, start, stop)
else
  items = redis.call('ZRANGE', z, start, stop)
end
if #items == 0 then return {count, 0, start, pos} end

local first = start + 1
if ranking ~= 'o' then
  local score
  if ranking == 'c' then score = redis.call('ZSCORE', z, items[1]) end
  first = rankAt(z, d, desc, ranking, start, encOf(items[1]), score)
end

local reply = {count, first, start, pos}
for _, zm in ipairs(items) do reply[#reply + 1] = zm end
return reply
