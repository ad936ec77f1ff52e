-- queue_claimlib.lua: the claim step shared by queue_claim.lua and queue_complete.lua. It
-- is not a script of its own: Go prepends it to both (see queue_scripts.go).
--
-- claim(c, todo, out, acks) starts deliveries just read or reclaimed. c holds the keys
-- stream, dead and fence and the values group, now (Unix ms), cap (delivery
-- cap: a job delivered this many times is dead-lettered instead), jobTTL and deadTTL
-- (seconds) and deadMax (dead-letter stream MAXLEN bound). todo lists {entry id, job id,
-- job hash key}. Each delivery gets a fresh fencing token (one INCRBY for all of them),
-- or is settled at once when it cannot run.
--
-- Appends to out, per delivery: {"ok", entry, id, token, exchange, symbol, interval,
-- analyzer, watermark, attempt} to run it; {"dead", entry, id} when it was dead-lettered
-- (cap reached or job record gone); {"skip", entry, id} when the entry is not the job's
-- current one. Appends to acks the entries to acknowledge and delete, which the caller
-- then hands to ackAll.
local function claim(c, todo, out, acks)
  if #todo == 0 then
    return
  end
  -- A token for every delivery, whether it runs or not: the unused ones are gaps.
  local tok = redis.call('INCRBY', c.fence, #todo) - #todo
  for _, t in ipairs(todo) do
    local entry, id, jk = t[1], t[2], t[3]
    local f = redis.call('HMGET', jk, 'st', 'msg', 'att', 'ex', 'sym', 'iv', 'an', 'wm')
    tok = tok + 1
    -- Most deliveries are first ones, whose attempt needs no number conversion (each
    -- costs Lua a formatted print).
    local n = 0
    if f[3] and f[3] ~= '0' then
      n = tonumber(f[3]) or 0
    end
    local reason
    if not f[1] then
      reason = 'analysis: job record expired or missing'
    elseif f[2] ~= entry or (f[1] ~= 'queued' and f[1] ~= 'running') then
      acks[#acks + 1] = entry
      out[#out + 1] = {'skip', entry, id}
    elseif n >= c.cap then
      reason = 'analysis: delivered ' .. f[3] .. ' times without completing'
    else
      local att = '1'
      if n > 0 then
        att = n + 1
      end
      -- No EXPIRE: the record keeps the TTL of its last enqueue or settlement, a job
      -- TTL (a day by default) from now at most; settling it sets a fresh one.
      redis.call('HSET', jk, 'st', 'running', 'tok', tok, 'att', att, 'upd', c.now)
      out[#out + 1] = {'ok', entry, id, tok, f[4], f[5], f[6], f[7], f[8], att}
    end
    if reason then
      acks[#acks + 1] = entry
      local d = redis.call('XADD', c.dead, 'MAXLEN', '~', c.deadMax, '*', 'j', id, 'e', reason,
        'ex', f[4] or '', 'sym', f[5] or '', 'iv', f[6] or '', 'an', f[7] or '', 'att', f[3] or '0', 'at', c.now)
      if f[1] then
        redis.call('HSET', jk, 'st', 'dead', 'err', reason, 'dmsg', d, 'upd', c.now)
        redis.call('EXPIRE', jk, c.deadTTL)
      end
      out[#out + 1] = {'dead', entry, id}
    end
  end
end

-- intake turns entries read or reclaimed ({entry id, {field, value, ...}}) into claim's
-- todo list; prefix starts every job hash key. An entry that is not one field j=<job id>
-- is dead-lettered at once (its fields kept as the worker's deadLetter formats them:
-- sorted "field=value", space separated), appended to acks and reported in out as
-- {"dead", entry, ""}.
local function intake(c, entries, prefix, out, acks)
  local todo = {}
  for _, e in ipairs(entries) do
    local entry, fields = e[1], e[2] or {}
    local id = fields[2]
    if #fields == 2 and fields[1] == 'j' and id ~= '' and not string.find(id, '[{}: ]') then
      todo[#todo + 1] = {entry, id, prefix .. id}
    else
      local kv = {}
      for j = 1, #fields, 2 do
        kv[#kv + 1] = fields[j] .. '=' .. (fields[j + 1] or '')
      end
      table.sort(kv)
      acks[#acks + 1] = entry
      redis.call('XADD', c.dead, 'MAXLEN', '~', c.deadMax, '*', 'j', '', 'e',
        'analysis: malformed job entry: want one field j=<job id>', 'raw', table.concat(kv, ' '), 'at', c.now)
      out[#out + 1] = {'dead', entry, ''}
    end
  end
  return todo
end

-- ackAll acknowledges and deletes the entries in acks. A group delivers in order, so
-- every entry older than the oldest one still pending was delivered and, no longer
-- pending, acknowledged: one XTRIM MINID removes those in a single pass over the head of
-- the stream, where XDEL looks each id up from the start of its node (1.6 µs an entry).
-- When the trim took fewer entries than acks holds, some are newer than the oldest
-- pending one and XDEL removes them; when none is pending, XDEL removes all. (An entry
-- acknowledged but left in the stream, which no path of this queue does, would make the
-- trim count high and leave one of ours behind: the next trim past it removes it.) With
-- no consumer group, XDEL removes all.
local function ackAll(c, acks)
  if #acks == 0 then
    return
  end
  redis.call('XACK', c.stream, c.group, unpack(acks))
  -- XPENDING of a missing group is an error (XACK of one is not); pcall's error reply
  -- has no floor.
  local floor = redis.pcall('XPENDING', c.stream, c.group)[2]
  if not floor or redis.call('XTRIM', c.stream, 'MINID', floor) < #acks then
    redis.call('XDEL', c.stream, unpack(acks))
  end
end
