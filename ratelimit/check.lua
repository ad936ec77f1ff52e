-- check.lua decides, and unless peeking charges, every rate-limit policy of one
-- identifier in one atomic step. Nothing is written unless every policy allows.
--
-- KEYS[i]  state key of policy i; all keys share the identifier's hash tag
-- ARGV[1]  cost: units the request consumes (integer >= 1)
-- ARGV[2]  "1" to peek (decide without writing), "0" to charge
-- ARGV[3 + 4*(i-1) .. 6 + 4*(i-1)]  policy i: algorithm, limit, window, burst
--          algorithm: "f" fixed window, "s" sliding window, "t" token bucket, "g" GCRA
--          limit: units per window (token bucket: units refilled per window)
--          window: microseconds
--          burst: capacity of token bucket and GCRA (ignored by the window algorithms)
--
-- Reply: {now, allowed, then for each policy i: allowed, remaining, reset, retry}
--   now        Redis server time, microseconds since the Unix epoch
--   allowed    1 if every policy allows (and, unless peeking, all were charged), else 0
--   remaining  units left: after the charge if one was made, else before the request
--   reset      microseconds until the policy's quota is whole again (fixed window: window
--              end), after the charge if one was made
--   retry      microseconds until a request of this cost could pass the policy; 0 if it passes
--
-- Each state value is "<algorithm> <n>[ <n>[ <n>]]" so that a policy whose algorithm
-- changed starts afresh instead of misreading the old state. Every write sets an expiry:
-- a key that expires is equivalent to a fresh one, so no key ever lives without a TTL.
--
-- The script runs on every rate-limited request, so it is written for Redis's CPU: one
-- straight loop, no closures or tables per policy beyond the reply, states parsed with
-- string.find/sub instead of patterns.

local cost = tonumber(ARGV[1])
local peek = ARGV[2] == '1'

-- Server time; allowed because Redis 7 replicates scripts by their effects.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local floor, ceil, max, min = math.floor, math.ceil, math.max, math.min
local find, sub, byte, format = string.find, string.sub, string.byte, string.format

-- The reply is built in place: for policy i, reply[r+1..r+4] with r = 4*i - 2 hold
--   ok      1 if cost units fit now, else 0
--   avail   units available now (before any charge)
--   reset   microseconds until the quota is whole again, uncharged
--   retry   microseconds until cost units fit (0 if ok)
-- and pend[3*i-2..3*i] what charging would make of an ok policy: the reset after the
-- charge, the value to store, and when that value is no longer needed (microseconds).
local n = #KEYS
local reply = { now, 1 }
local pend = {}
local all = true

for i = 1, n do
  local o = 4 * i - 1
  local algo = ARGV[o]
  local limit, window, burst = tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3])
  local v = redis.call('GET', KEYS[i])
  -- x, y, z: the state's numbers, or nil for a missing key or another algorithm's state.
  local x, y, z
  local ok, avail, reset, retry = 0, 0, 0, 0
  local p = 3 * i - 3
  if v and byte(v) == byte(algo) then
    local a = find(v, ' ', 3, true)
    if a then
      x = tonumber(sub(v, 3, a - 1))
      local b = find(v, ' ', a + 1, true)
      if b then
        y, z = tonumber(sub(v, a + 1, b - 1)), tonumber(sub(v, b + 1))
      else
        y = tonumber(sub(v, a + 1))
      end
    else
      x = tonumber(sub(v, 3))
    end
  end

  if algo == 'g' then
    -- GCRA: x is the theoretical arrival time (TAT); one unit per interval, burst deep.
    local interval = window / limit
    local tat = now
    if x and x > now then
      tat = x
    end
    -- The small epsilon absorbs float error in interval; units are whole.
    avail = floor((now - tat) / interval + burst + 1e-9)
    reset = tat - now
    local newtat = tat + cost * interval
    if now >= newtat - burst * interval then
      ok, retry = 1, 0
      pend[p + 1], pend[p + 2], pend[p + 3] = newtat - now, 'g ' .. format('%.17g', newtat), newtat
    else
      retry = newtat - burst * interval - now
    end

  elseif algo == 'f' then
    -- Fixed window: x is the window start, y its count.
    local start = now - now % window
    local used = 0
    if x == start then
      used = y
    end
    avail, reset = limit - used, start + window - now
    if used + cost <= limit then
      ok, retry = 1, 0
      pend[p + 1], pend[p + 2], pend[p + 3] = reset, format('f %d %d', start, used + cost), start + window
    else
      retry = reset
    end

  elseif algo == 's' then
    -- Sliding window: x is the current window start, y its count, z the previous
    -- window's count. The quota is whole again once both counted windows slid past.
    local start = now - now % window
    local cur, prev = 0, 0
    if x == start then
      cur, prev = y, z
    elseif x == start - window then
      prev = y
    end
    local used = floor(prev * (window - (now - start)) / window) + cur
    avail = limit - used
    if cur > 0 then
      reset = start + 2 * window - now
    elseif prev > 0 then
      reset = start + window - now
    else
      reset = 0
    end
    if used + cost <= limit then
      ok, retry = 1, 0
      pend[p + 1], pend[p + 2], pend[p + 3] = start + 2 * window - now,
        format('s %d %d %d', start, cur + cost, prev), start + 2 * window
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
    -- Token bucket: x is the tokens, y when they were last refilled; limit tokens are
    -- added at each whole window since then, up to burst.
    local tokens, at = burst, now
    if x then
      tokens, at = x, y
    end
    if now >= at + window then
      local k = floor((now - at) / window)
      tokens = min(burst, tokens + k * limit)
      at = at + k * window
    end
    avail = tokens
    if tokens >= burst then
      reset = 0
    else
      reset = at + ceil((burst - tokens) / limit) * window - now
    end
    if tokens >= cost then
      ok, retry = 1, 0
      local full = at + ceil((burst - tokens + cost) / limit) * window
      pend[p + 1], pend[p + 2], pend[p + 3] = full - now, format('t %d %d', tokens - cost, at), full
    else
      retry = at + ceil((cost - tokens) / limit) * window - now
    end
  end
  if ok == 0 then
    all = false
  end
  local r = 4 * i - 2
  reply[r + 1], reply[r + 2], reply[r + 3], reply[r + 4] = ok, avail, reset, retry
end

-- Expiry in whole milliseconds, rounded up and at least 1 ms ahead, so every key we
-- write has a TTL and none outlives the state it describes by more than a millisecond.
local charge = all and not peek
local nowms = floor(now / 1000)
for i = 1, n do
  local r, p = 4 * i - 2, 3 * i - 3
  if charge then
    reply[r + 2], reply[r + 3] = reply[r + 2] - cost, pend[p + 1]
    redis.call('SET', KEYS[i], pend[p + 2], 'PXAT', format('%d', max(ceil(pend[p + 3] / 1000), nowms + 1)))
  end
  reply[r + 2] = max(reply[r + 2], 0)
  reply[r + 3] = ceil(max(reply[r + 3], 0))
  reply[r + 4] = ceil(reply[r + 4])
end
if not all then
  reply[2] = 0
end
return reply
