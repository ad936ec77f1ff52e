-- candle_upsert.lua: insert or replace the candle that opens at a given time, trim the
-- set to the retention window and refresh its TTL.
--
-- KEYS[1]  the candle sorted set (ts:{exchange:SYMBOL}:candles:<interval>)
-- ARGV[1]  open time in Unix milliseconds: the score
-- ARGV[2]  the encoded candle: the member
-- ARGV[3]  "1" if the candle is closed, "0" if it is still forming
-- ARGV[4]  lowest score to keep (older candles are removed)
-- ARGV[5]  TTL of the key in milliseconds
--
-- Reply: 1 if written, 0 if skipped because a closed candle for that open time is
-- already stored and the new one is still forming (a late, stale update).
local old = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
if ARGV[3] == '0' then
  for _, m in ipairs(old) do
    if string.find(m, '"closed":true', 1, true) then
      return 0
    end
  end
end
if #old > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
