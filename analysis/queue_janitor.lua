-- queue_janitor.lua: remove consumers from the job stream's consumer group that hold no
-- pending entries and have been idle at least ARGV[2] ms. Checking and removing happen in
-- one script, so no entry can be delivered to a consumer between the check and its
-- removal (XGROUP DELCONSUMER drops a consumer's pending entries, which would lose jobs).
--
-- KEYS[1]  job stream
-- ARGV[1]  consumer group
-- ARGV[2]  minimum idle time, ms (0: any)
-- ARGV[3]  consumer to keep ("" keeps none): the caller itself when it sweeps
-- ARGV[4..] consumers to consider; none means every consumer of the group
--
-- Reply: the names of the consumers removed. A missing stream or group removes nothing.
local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
if not ok then
  return {}
end
local minIdle = tonumber(ARGV[2])
local only = nil
if #ARGV > 3 then
  only = {}
  for i = 4, #ARGV do
    only[ARGV[i]] = true
  end
end
local removed = {}
for _, c in ipairs(consumers) do
  local f = {}
  for i = 1, #c, 2 do
    f[c[i]] = c[i + 1]
  end
  local name = f['name']
  if name ~= ARGV[3] and (only == nil or only[name]) and tonumber(f['pending']) == 0
      and tonumber(f['idle']) >= minIdle then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
    removed[#removed + 1] = name
  end
end
return removed
