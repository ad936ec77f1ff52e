-- decimal.lua is not a script of its own: lua.go puts it in front of write.lua. It does
-- exact decimal arithmetic on the order-preserving value encoding of decimal.go, so that
-- an increment reads, adds and writes in one script, with no float64 on the way:
--
--   negative  '0' <4-digit 9999-(e+5000)> <digits, each 9-d> '~'
--   zero      '1'
--   positive  '2' <4-digit e+5000> <digits> '!'
--
-- A decoded value is a triple (sign, digits, e): sign × 0.<digits> × 10^e, digits
-- without trailing zeros and the first one non-zero; zero is (0, '', 0).

-- The limits of decimal.go (MaxDigits, MaxExponent); TestIncrementLimits ties them.
local maxDigits, maxExponent = 80, 1000

-- Powers of ten as literals: exact doubles, where math.pow's may not be.
local pow10 = {
  [0] = 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
}

local complement = {
  ['0'] = '9', ['1'] = '8', ['2'] = '7', ['3'] = '6', ['4'] = '5',
  ['5'] = '4', ['6'] = '3', ['7'] = '2', ['8'] = '1', ['9'] = '0',
}

local function decDecode(enc)
  local c = string.sub(enc, 1, 1)
  if c == '1' then return 0, '', 0 end
  local off = tonumber(string.sub(enc, 2, 5))
  local digits = string.sub(enc, 6, -2)
  if c == '0' then
    return -1, (string.gsub(digits, '%d', complement)), 4999 - off
  end
  return 1, digits, off - 5000
end

local function decEncode(sign, digits, e)
  if sign == 0 then return '1' end
  if sign > 0 then return '2' .. string.format('%04d', e + 5000) .. digits .. '!' end
  return '0' .. string.format('%04d', 4999 - e) .. (string.gsub(digits, '%d', complement)) .. '~'
end

-- decString is the canonical decimal (what shopspring's String gives): no exponent, no
-- trailing zeros after the point.
local function decString(sign, digits, e)
  if sign == 0 then return '0' end
  local n, s = #digits, nil
  if e >= n then
    s = digits .. string.rep('0', e - n)
  elseif e > 0 then
    s = string.sub(digits, 1, e) .. '.' .. string.sub(digits, e + 1)
  else
    s = '0.' .. string.rep('0', -e) .. digits
  end
  if sign < 0 then s = '-' .. s end
  return s
end

-- decScore is the sorted-set score: the value's float64, correctly rounded by the
-- server's strtod, as a string that reads back as the same float64. Every write takes its
-- score from here, so scores are one monotonic function of the value.
local function decScore(sign, digits, e)
  if sign == 0 then return '0' end
  -- d.ddd e X: some Lua implementations (the embedded server's) read an exponent only
  -- after a decimal point.
  local rest = string.sub(digits, 2)
  if rest == '' then rest = '0' end
  local s = string.sub(digits, 1, 1) .. '.' .. rest .. 'e' .. (e - 1)
  if sign < 0 then s = '-' .. s end
  local f = tonumber(s)
  if f == nil then -- beyond float64 where tonumber gives up instead of saying inf
    if sign < 0 then return '-inf' end
    return 'inf'
  end
  return string.format('%.17g', f)
end

-- limbs splits digits followed by pad zeros into base-10^7 limbs, least significant
-- first (sums of two stay far below 2^53, so Lua's doubles are exact here).
local function limbs(digits, pad)
  local s = digits .. string.rep('0', pad)
  local t, i = {}, #s
  while i > 0 do
    local j = math.max(1, i - 6)
    t[#t + 1] = tonumber(string.sub(s, j, i))
    i = j - 1
  end
  return t
end

-- cmpLimbs compares two magnitudes whose top limbs are non-zero.
local function cmpLimbs(a, b)
  if #a ~= #b then
    if #a < #b then return -1 end
    return 1
  end
  for i = #a, 1, -1 do
    if a[i] ~= b[i] then
      if a[i] < b[i] then return -1 end
      return 1
    end
  end
  return 0
end

-- addLimbs returns the digits of |sum| as an integer times 10^lo, and the sum's sign; nil
-- when the sum is zero.
local function addLimbs(s1, d1, e1, s2, d2, e2, lo)
  local a, b = limbs(d1, e1 - #d1 - lo), limbs(d2, e2 - #d2 - lo)
  local r, sign = {}, s1
  if s1 == s2 then
    local carry = 0
    for i = 1, math.max(#a, #b) do
      local x = (a[i] or 0) + (b[i] or 0) + carry
      if x >= 10000000 then
        r[i], carry = x - 10000000, 1
      else
        r[i], carry = x, 0
      end
    end
    if carry > 0 then r[#r + 1] = carry end
  else
    local c = cmpLimbs(a, b)
    if c == 0 then return nil end
    if c < 0 then a, b, sign = b, a, s2 end
    local borrow = 0
    for i = 1, #a do
      local x = a[i] - (b[i] or 0) - borrow
      if x < 0 then
        r[i], borrow = x + 10000000, 1
      else
        r[i], borrow = x, 0
      end
    end
  end
  local n = #r
  while n > 1 and r[n] == 0 do n = n - 1 end
  local parts = { string.format('%d', r[n]) }
  for i = n - 1, 1, -1 do parts[#parts + 1] = string.format('%07d', r[i]) end
  return table.concat(parts), sign
end

-- decAdd returns the exact sum of two decoded values, or nil when it is outside the
-- limits (more than maxDigits significant digits, or magnitude beyond 10^±maxExponent).
local function decAdd(s1, d1, e1, s2, d2, e2)
  local sign, digits, e
  if s2 == 0 then
    sign, digits, e = s1, d1, e1
  elseif s1 == 0 then
    sign, digits, e = s2, d2, e2
  else
    -- Both are integers times 10^lo. When they span more than 170 positions, their
    -- lowest digits are at different places (each has at most 80 digits), so the sum's
    -- lowest digit is at lo, and the larger one leads by over 90 places, so the sum keeps
    -- a digit within two places of its top: over maxDigits whatever cancels.
    local lo = math.min(e1 - #d1, e2 - #d2)
    local hi = math.max(e1, e2)
    if hi - lo > 2 * maxDigits + 10 then return nil end
    local s
    if hi - lo <= 15 then
      -- Both are integers below 10^15 times 10^lo: a double holds them, their sum
      -- (below 2^53) and each step exactly.
      local x = s1 * tonumber(d1) * pow10[e1 - #d1 - lo] + s2 * tonumber(d2) * pow10[e2 - #d2 - lo]
      if x == 0 then return 0, '', 0 end
      sign = 1
      if x < 0 then sign, x = -1, -x end
      s = string.format('%.0f', x)
    else
      s, sign = addLimbs(s1, d1, e1, s2, d2, e2, lo)
      if not s then return 0, '', 0 end
    end
    digits = string.match(s, '^(.-)0*$')
    e = lo + #s
  end
  if #digits > maxDigits or e > maxExponent or e < -maxExponent then return nil end
  return sign, digits, e
end
