-- check.lua decides, and unless peeking charges, a batch of rate-limit checks in one
-- atomic step, in order, on one reading of the server clock. Each check covers every
-- policy of its identifier, and nothing of a check is written unless every policy
-- allows it. Checks of one identifier see the charges of the checks before them.
--
-- KEYS[(j-1)*P + i]  state key of policy i for check j; the keys of one check share
--                    its identifier's hash tag (on Redis Cluster, all keys of one call
--                    must share a slot)
-- ARGV[1]  "1" to peek (decide without writing), "0" to charge
-- ARGV[2]  P, the number of policies
-- ARGV[3 + 4*(i-1) .. 6 + 4*(i-1)]  policy i: algorithm, limit, window, burst
--          algorithm: "F" fixed window, "S" sliding window, "T" token bucket, "G" GCRA
--          limit: units per window (token bucket: units refilled per window)
--          window: microseconds
--          burst: capacity of token bucket and GCRA (ignored by the window algorithms)
-- ARGV[3 + 4*P + (j-1)]  cost of check j: units the request consumes (integer >= 1)
--
-- Reply: {now, then for each check j: allowed, then for each policy i: allowed,
--         remaining, reset, retry}, so check j starts at index 2 + (j-1)*(1 + 4*P)
--   now        Redis server time, microseconds since the Unix epoch
--   allowed    1 if every policy allows (and, unless peeking, all were charged), else 0
--   remaining  units left: after the charge if one was made, else before the request
--   reset      microseconds until the policy's quota is whole again (fixed window: window
--              end), after the charge if one was made
--   retry      microseconds until a request of this cost could pass the policy; 0 if it passes
--
-- Each state value is the algorithm's letter followed by its numbers as little-endian
-- doubles (exact for integers up to 2^53, and for GCRA's fractional arrival times), so
-- that a policy whose algorithm changed starts afresh instead of misreading the old
-- state. Every write sets an expiry: a key that expires is equivalent to a fresh one, so
-- no key ever lives without a TTL.
--
-- The script runs for every rate-limited request, so it is written for Redis's CPU:
-- one TIME per batch, states packed and unpacked by the struct library in one C call
-- each instead of formatted and parsed as text, numbers passed to SET as numbers, policy
-- parameters parsed once per batch, and each key read once and written once per batch
-- however many of its checks the batch holds.

local peek = ARGV[1] == '1'
local n = tonumber(ARGV[2])
-- A caller with another argument layout must fail, not loop for ever on n = 0.
if not n or n < 1 or #KEYS % n ~= 0 or #ARGV ~= 2 + 4 * n + #KEYS / n then
  return redis.error_reply('ERR check.lua: arguments do not match KEYS')
end

-- Server time; allowed because Redis 7 replicates scripts by their effects.
local t = redis.call('TIME')
local now = t[1] * 1000000 + t[2]

local floor, ceil, max, min = math.floor, math.ceil, math.max, math.min
local byte, pack, unpack = string.byte, struct.pack, struct.unpack
local call = redis.call

-- Expiries are in whole milliseconds, rounded up and at least 1 ms ahead, so every key
-- we write has a TTL and none outlives the state it describes by more than a millisecond.
local nowms = floor(now / 1000) + 1

local algos, tags, limits, windows, bursts = {}, {}, {}, {}, {}
for i = 1, n do
  local o = 4 * i - 1
  algos[i] = ARGV[o]
  tags[i] = byte(ARGV[o])
  limits[i], windows[i], bursts[i] = tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3])
end

-- A batch often holds several checks of one identifier (a bot's concurrent requests):
-- each key is read once and written once, at the end, with the state and expiry the last
-- of its checks left. Later checks read the state from here, so they still see the
-- charges before them.
local states, expiries, written = {}, {}, {}
local function load(key)
  local v = states[key]
  if v == nil then
    v = call('GET', key) or false
    states[key] = v
  end
  return v or nil
end
local function store(key, val, atms)
  if not expiries[key] then
    written[#written + 1] = key
  end
  states[key], expiries[key] = val, atms
end

local checks = #KEYS / n
local reply = { now }
-- With several policies, what charging a check would write is kept until all have
-- allowed: pend[3*i-2..3*i] hold policy i's reset after the charge, value and expiry (µs).
local pend = {}

for j = 1, checks do
  local cost = tonumber(ARGV[2 + 4 * n + j])
  local kb = (j - 1) * n        -- KEYS[kb + i] is policy i's key
  local rb = #reply + 1         -- reply[rb] is the check's allowed, then 4 per policy
  reply[rb] = 1
  local all = true

  for i = 1, n do
    local algo, tag = algos[i], tags[i]
    local limit, window, burst = limits[i], windows[i], bursts[i]
    local key = KEYS[kb + i]
    local v = load(key)
    -- A state is used only if it has this algorithm's letter and length; otherwise (a
    -- missing key, another algorithm's or an older format's state) the policy is fresh.
    if v and byte(v) ~= tag then
      v = nil
    end
    local ok, avail, reset, retry = false, 0, 0, 0
    -- When ok: creset, the reset after the charge; val, the state to store; exp, when it
    -- is no longer needed (µs).
    local creset, val, exp

    if tag == 71 then -- 'G'
      -- GCRA: the state is the theoretical arrival time (TAT); one unit per interval,
      -- burst deep.
      local interval = window / limit
      local tat = now
      if v and #v == 9 then
        local x = unpack('<d', v, 2)
        if x > now then
          tat = x
        end
      end
      -- The small epsilon absorbs float error in interval; units are whole.
      avail = floor((now - tat) / interval + burst + 1e-9)
      reset = tat - now
      local newtat = tat + cost * interval
      if now >= newtat - burst * interval then
        ok, creset, val, exp = true, newtat - now, pack('<c1d', algo, newtat), newtat
      else
        retry = newtat - burst * interval - now
      end

    elseif tag == 70 then -- 'F'
      -- Fixed window: the state is the window start and its count.
      local start = now - now % window
      local used = 0
      if v and #v == 17 then
        local x, y = unpack('<dd', v, 2)
        if x == start then
          used = y
        end
      end
      avail, reset = limit - used, start + window - now
      if used + cost <= limit then
        ok, creset, val, exp = true, reset, pack('<c1dd', algo, start, used + cost), start + window
      else
        retry = reset
      end

    elseif tag == 83 then -- 'S'
      -- Sliding window: the state is the current window start, its count and the previous
      -- window's count. The quota is whole again once both counted windows slid past.
      local start = now - now % window
      local cur, prev = 0, 0
      if v and #v == 25 then
        local x, y, z = unpack('<ddd', v, 2)
        if x == start then
          cur, prev = y, z
        elseif x == start - window then
          prev = y
        end
      end
      local used = floor(prev * (window - (now - start)) / window) + cur
      avail = limit - used
      if cur > 0 then
        reset = start + 2 * window - now
      elseif prev > 0 then
        reset = start + window - now
      end
      if used + cost <= limit then
        exp = start + 2 * window
        ok, creset, val = true, exp - now, pack('<c1ddd', algo, start, cur + cost, prev)
      else
        -- Earliest e (elapsed part of a window) with floor(p * (window - e) / window) +
        -- c + cost <= limit: in this window if its count leaves room, otherwise in the
        -- next one, where this window's count becomes the previous one.
        local base, p, room = start, prev, limit - cur - cost
        if room < 0 then
          base, p, room = start + window, cur, limit - cost
        end
        local e = 0
        if p > room then
          e = max(floor(window - (room + 1) * window / p) + 1, 0)
        end
        retry = max(base + e - now, 1)
      end

    else
      -- Token bucket: the state is the tokens and when they were last refilled; limit
      -- tokens are added at each whole window since then, up to burst.
      local tokens, at = burst, now
      if v and #v == 17 then
        tokens, at = unpack('<dd', v, 2)
      end
      if now >= at + window then
        local k = floor((now - at) / window)
        tokens = min(burst, tokens + k * limit)
        at = at + k * window
      end
      avail = tokens
      if tokens < burst then
        reset = at + ceil((burst - tokens) / limit) * window - now
      end
      if tokens >= cost then
        exp = at + ceil((burst - tokens + cost) / limit) * window
        ok, creset, val = true, exp - now, pack('<c1dd', algo, tokens - cost, at)
      else
        retry = at + ceil((cost - tokens) / limit) * window - now
      end
    end

    local r = rb + 4 * i - 4
    if not ok then
      all = false
      reply[r + 1], reply[r + 2], reply[r + 3], reply[r + 4] = 0, max(avail, 0), ceil(max(reset, 0)), ceil(retry)
    elseif peek then
      reply[r + 1], reply[r + 2], reply[r + 3], reply[r + 4] = 1, max(avail, 0), ceil(max(reset, 0)), 0
    elseif n == 1 then
      store(key, val, max(ceil(exp / 1000), nowms))
      reply[r + 1], reply[r + 2], reply[r + 3], reply[r + 4] = 1, max(avail - cost, 0), ceil(max(creset, 0)), 0
    else
      local p = 3 * i - 3
      pend[p + 1], pend[p + 2], pend[p + 3] = creset, val, exp
      reply[r + 1], reply[r + 2], reply[r + 3], reply[r + 4] = 1, max(avail, 0), ceil(max(reset, 0)), 0
    end
  end

  if not all then
    reply[rb] = 0
  elseif n > 1 and not peek then
    for i = 1, n do
      local r, p = rb + 4 * i - 4, 3 * i - 3
      store(KEYS[kb + i], pend[p + 2], max(ceil(pend[p + 3] / 1000), nowms))
      reply[r + 2], reply[r + 3] = max(reply[r + 2] - cost, 0), ceil(max(pend[p + 1], 0))
    end
  end
end
for _, key in ipairs(written) do
  call('SET', key, states[key], 'PXAT', expiries[key])
end
return reply
