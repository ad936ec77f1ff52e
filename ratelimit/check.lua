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
-- Each state value is "<algorithm> <n> <n> [<n>]" so that a policy whose algorithm changed
-- starts afresh instead of misreading the old state. Every write sets an expiry: a key
-- that expires is equivalent to a fresh one, so no key ever lives without a TTL.

local cost = tonumber(ARGV[1])
local peek = ARGV[2] == '1'

-- Server time; allowed because Redis 7 replicates scripts by their effects.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local function load(key, algo)
  local v = redis.call('GET', key)
  if not v then
    return nil
  end
  local a, x, y, z = string.match(v, '^(%a) (%S+) (%S+) ?(%S*)$')
  if a ~= algo then
    return nil
  end
  return tonumber(x), tonumber(y), tonumber(z)
end

-- %.17g keeps microsecond timestamps (16 digits) and fractional GCRA times exact;
-- tostring would round to 14 digits.
local function fmt(n)
  return string.format('%.17g', n)
end

-- Each algorithm returns, on the state before this request:
--   ok      whether cost units fit now
--   avail   units available now (before any charge)
--   reset   microseconds until the quota is whole again, uncharged
--   retry   microseconds until cost units fit (0 if ok)
-- and, when ok, what charging would make of it:
--   reset2  reset after the charge
--   state   the value to store
--   expiry  when that value is no longer needed, microseconds since the epoch

local function fixed(key, limit, window)
  local start = now - now % window
  local used = 0
  local s, n = load(key, 'f')
  if s == start then
    used = n
  end
  local reset = start + window - now
  if used + cost <= limit then
    return true, limit - used, reset, 0, reset, 'f ' .. fmt(start) .. ' ' .. fmt(used + cost), start + window
  end
  return false, limit - used, reset, reset
end

-- A sliding window's quota is whole again once both counted windows have slid past.
local function slidingReset(start, window, cur, prev)
  if cur > 0 then
    return start + 2 * window - now
  elseif prev > 0 then
    return start + window - now
  end
  return 0
end

local function sliding(key, limit, window)
  local start = now - now % window
  local cur, prev = 0, 0
  local s, c, p = load(key, 's')
  if s == start then
    cur, prev = c, p
  elseif s == start - window then
    prev = c
  end
  local elapsed = now - start
  local used = math.floor(prev * (window - elapsed) / window) + cur
  local reset = slidingReset(start, window, cur, prev)
  if used + cost <= limit then
    return true, limit - used, reset, 0, slidingReset(start, window, cur + cost, prev),
      's ' .. fmt(start) .. ' ' .. fmt(cur + cost) .. ' ' .. fmt(prev), start + 2 * window
  end
  -- Earliest time at which floor(p * (window - e) / window) + c + cost <= limit, where e
  -- is the elapsed part of a window: this window if its count leaves room, otherwise
  -- the next one, where this window's count becomes the previous one.
  local base, p2, room = start, prev, limit - cur - cost
  if room < 0 then
    base, p2, room = start + window, cur, limit - cost
  end
  local e = 0
  if p2 > room then
    e = math.floor(window - (room + 1) * window / p2) + 1
    if e < 0 then e = 0 end
  end
  return false, limit - used, reset, math.max(base + e - now, 1)
end

local function bucket(key, refill, interval, capacity)
  local tokens, at = capacity, now
  local k, a = load(key, 't')
  if k then
    tokens, at = k, a
  end
  if now >= at + interval then
    local n = math.floor((now - at) / interval)
    tokens = math.min(capacity, tokens + n * refill)
    at = at + n * interval
  end
  local function fullAt(left)
    if left >= capacity then return now end
    return at + math.ceil((capacity - left) / refill) * interval
  end
  local reset = fullAt(tokens) - now
  if tokens >= cost then
    local full = fullAt(tokens - cost)
    return true, tokens, reset, 0, full - now, 't ' .. fmt(tokens - cost) .. ' ' .. fmt(at), full
  end
  return false, tokens, reset, at + math.ceil((cost - tokens) / refill) * interval - now
end

local function gcra(key, limit, window, burst)
  local interval = window / limit
  local tat = now
  local stored = load(key, 'g')
  if stored and stored > now then
    tat = stored
  end
  -- The small epsilon absorbs float error in interval; units are whole.
  local avail = math.floor((now - (tat - burst * interval)) / interval + 1e-9)
  local newtat = tat + cost * interval
  local allowat = newtat - burst * interval
  if now >= allowat then
    return true, avail, tat - now, 0, newtat - now, 'g ' .. fmt(newtat) .. ' 0', newtat
  end
  return false, avail, tat - now, allowat - now
end

local algos = { f = fixed, s = sliding, t = bucket, g = gcra }

local n = #KEYS
local res = {}
local all = true
for i = 1, n do
  local o = 3 + 4 * (i - 1)
  local r = { algos[ARGV[o]](KEYS[i], tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3])) }
  res[i] = r
  if not r[1] then
    all = false
  end
end

local charge = all and not peek
local reply = { now, all and 1 or 0 }
-- Expiry in whole milliseconds, rounded up and at least 1 ms ahead, so every key we
-- write has a TTL and none outlives the state it describes by more than a millisecond.
local nowms = math.floor(now / 1000)
for i = 1, n do
  local ok, avail, reset, retry, reset2, state, expiry = unpack(res[i])
  if charge then
    avail, reset = avail - cost, reset2
    local at = math.max(math.ceil(expiry / 1000), nowms + 1)
    redis.call('SET', KEYS[i], state, 'PXAT', string.format('%d', at))
  end
  reply[#reply + 1] = ok and 1 or 0
  reply[#reply + 1] = math.max(avail, 0)
  reply[#reply + 1] = math.ceil(math.max(reset, 0))
  reply[#reply + 1] = math.ceil(retry)
end
return reply
