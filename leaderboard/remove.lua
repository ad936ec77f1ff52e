-- remove.lua deletes one member from windows of a board.
--
-- KEYS[4i-3..4i]  window i: z (sorted set), h (hash), d (distinct values), c (value counts)
-- ARGV[1]         member name
-- ARGV[2]         '1' for a Dense board (keep d and c), else '0'
--
-- Reply: the number of windows the member was removed from.

local member, dense = ARGV[1], ARGV[2] == '1'
local removed = 0
for i = 1, #KEYS / 4 do
  local z, h, d, c = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local v = redis.call('HGET', h, member)
  if v then
    local prefix = string.sub(v, 1, string.find(v, ' ', 1, true) - 1)
    redis.call('ZREM', z, prefix .. member)
    redis.call('HDEL', h, member)
    if dense then
      local enc = string.sub(prefix, 1, #prefix - 15)
      if redis.call('HINCRBY', c, enc, -1) <= 0 then
        redis.call('HDEL', c, enc)
        redis.call('ZREM', d, enc)
      end
    end
    removed = removed + 1
  end
end
return removed
