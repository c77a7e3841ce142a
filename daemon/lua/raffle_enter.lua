-- raffle_enter: one entry into a raffle, atomically: the state, the window, the method, the
-- contact's remaining max entries, single-use codes, what a purchase is worth and, for the
-- points method, the points spent in the same script (so an entry is never paid for twice
-- nor made without payment).  Idempotent per (raffle, contact, method, ref): a replay
-- answers the first answer.  (daemon/store_raffles.c; docs/raffles.md)
--
-- Points: the entry spends them through the ledger's own steps (the `use: points` line
-- below embeds lua/lib/points.lua, as in points_ledger.lua): expire what is due, then take
-- what expires first, with a ledger entry in P pl:{cid} (reason 'spend', ref 'raffle:{id}',
-- note 'raffle entry'), a 'points' timeline entry and P c:{cid} points.  Spending never
-- changes lifetime points or the tier.  tests/integration/test_raffles.py reads the result
-- back through /v1/contacts/{id}/points.
--
-- Keys: P rf:{id}, P raffles:open, P rfv:{id}, P rfu:{id}, P rfk:{id}, P rfl:{id}, P rfn:{id},
--       P rfw:{id} (see raffle_write.lua), P eng:entered:{id} (contracts), P c:{cid},
--       P tl:{cid}, P pt:{cid}, P pl:{cid}, P ix:{kind}:{addr} and P contacts (a lead for an
--       unknown texter), P tpl:{id} (read only).
-- ARGV: 1 prefix, 2 op, 3 now (ms), 4 timeline max, 5 ledger max, 6 points expire_after
--       (ms, 0 = never), then per op:
--  api:      7 raffle id, 8 contact id, 9 method, 10 ref, 11 code (normalised), 12 count,
--            13 amount_c, 14 currency, 15 by
--            -> {'ok'|'dup', answer JSON} | {'not_found'} | {'refused', reason, detail}
--  text:     7 contact id ('' = unknown), 8 normalised text, 9 ref, 10 address kind,
--            11 address, 12 id for a lead, 13 create leads (1|0)
--            -> {'none'} | {status, raffle id, answer JSON or reason, reply template JSON,
--                contact HGETALL, raffle public JSON}
--  purchase: 7 contact id, 8 amount_c, 9 currency, 10 event id
--            -> {{raffle id, status, answer JSON or reason}...}
local op = ARGV[2]
-- use: points

-- ---- one entry ---------------------------------------------------------------------------

local function has(methods, m)
  return string.find(',' .. methods .. ',', ',' .. m .. ',', 1, true) ~= nil
end

-- status ('ok'|'dup'|'refused'|'not_found'), answer JSON or reason, detail
local function enter(rid, cid, method, ref, code, count, amount, cur, by)
  local rk = P .. 'rf:' .. rid
  local f = redis.call('HMGET', rk, 'state', 'starts', 'ends', 'methods', 'maxe', 'pcost', 'cur',
                       'min_c', 'per_c', 'w:' .. method)
  if not f[1] then return 'not_found', '' end
  if not has(f[4], method) then return 'refused', 'method', '' end
  if method == 'code' and ref == '' then ref = code end
  local ik = cid .. '|' .. method .. '|' .. ref
  local prev = redis.call('HGET', P .. 'rfk:' .. rid, ik)
  if prev then return 'dup', prev end
  if f[1] ~= 'open' then return 'refused', 'closed', f[1] end
  local ck = P .. 'c:' .. cid
  if cid == '' or redis.call('EXISTS', ck) == 0 then return 'refused', 'no_contact', '' end
  if now < tonumber(f[2]) then return 'refused', 'not_started', f[2] end
  if now >= tonumber(f[3]) then return 'refused', 'ended', f[3] end
  if method == 'code' then
    if redis.call('HEXISTS', P .. 'rfu:' .. rid, code) == 1 then
      return 'refused', 'code_used', ''
    end
    if redis.call('SISMEMBER', P .. 'rfv:' .. rid, code) == 0 then
      return 'refused', 'code_invalid', ''
    end
    count = 1
  elseif method == 'purchase' then
    if cur ~= f[7] then return 'refused', 'currency', f[7] end
    if amount < tonumber(f[8]) then return 'refused', 'below_minimum', f[8] end
    local per = tonumber(f[9])
    count = 1
    if per > 0 then count = math.floor(amount / per) end
    if count < 1 then return 'refused', 'below_minimum', f[9] end
  elseif method == 'keyword' then
    count = 1
  end
  local have = tonumber(redis.call('HGET', P .. 'rfn:' .. rid, cid) or '0')
  local left = tonumber(f[5]) - have
  if left <= 0 then return 'refused', 'max_entries', fmt(have) end
  local capped = false
  if count > left then
    if method ~= 'purchase' then return 'refused', 'max_entries', fmt(have) end
    count, capped = left, true
  end
  local spent = cjson.null
  if method == 'points' then
    expire(cid)
    local cost = count * tonumber(f[6])
    local lid, bal = debit(cid, cost, 'spend', 'raffle:' .. rid, 'raffle entry', by)
    if not lid then return 'refused', 'insufficient_points', fmt(bal) end
    spent = {points = cost, entry = lid, balance = bal}
  end
  local tier = redis.call('HGET', ck, 'tier')
  local tw = 1
  if tier then tw = tonumber(redis.call('HGET', rk, 'tw:' .. tier) or '1') end
  local w = count * tonumber(f[10] or '1') * tw
  local e = {'c', cid, 'm', method, 'r', ref, 'n', fmt(count), 'w', fmt(w), 'at', fmt(now)}
  if method == 'code' then e[#e + 1] = 'code'; e[#e + 1] = code end
  local eid = redis.call('XADD', P .. 'rfl:' .. rid, '*', unpack(e))
  redis.call('HINCRBY', P .. 'rfn:' .. rid, cid, count)
  redis.call('HINCRBY', P .. 'rfw:' .. rid, cid, w)
  redis.call('HINCRBY', rk, 'entries', count)
  redis.call('HINCRBY', rk, 'weight', w)
  if have == 0 then redis.call('HINCRBY', rk, 'contacts', 1) end
  if method == 'code' then
    redis.call('SREM', P .. 'rfv:' .. rid, code)
    redis.call('HSET', P .. 'rfu:' .. rid, code, cid)
    redis.call('HINCRBY', rk, 'codes_used', 1)
  end
  redis.call('SADD', P .. 'eng:entered:' .. rid, cid)
  timeline(cid, 'type', 'entry', 'raffle', rid, 'method', method, 'entries', fmt(count),
           'weight', fmt(w), 'ref', ref, 'entry', eid)
  local ans = cjson.encode({raffle_id = rid, contact_id = cid, method = method, ref = ref,
                            entry = eid, entries = count, weight = w,
                            contact_entries = have + count, capped = capped, at = now,
                            points = spent})
  redis.call('HSET', P .. 'rfk:' .. rid, ik, ans)
  -- the erasure registry (contact_erase.lua): the entry, the per-contact counts, the used
  -- code and the stored answer.  A drawn raffle's draw record (rfd:) is the public audit
  -- trail the verifier re-runs and is kept (docs/privacy.md).
  local reg = {'x rfl:' .. rid .. '\t' .. eid, 'h rfn:' .. rid, 'h rfw:' .. rid,
               'h rfk:' .. rid .. '\t' .. ik}
  if method == 'code' then reg[#reg + 1] = 'h rfu:' .. rid .. '\t' .. code end
  redis.call('SADD', P .. 'cx:' .. cid, unpack(reg))
  return 'ok', ans
end

local function open_ids()
  local ids = redis.call('SMEMBERS', P .. 'raffles:open')
  table.sort(ids)
  return ids
end

if op == 'api' then
  local amount = tonumber(ARGV[13]) or 0
  local st, d, x = enter(ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], tonumber(ARGV[12]),
                         amount, ARGV[14], ARGV[15])
  if st == 'not_found' then return {'not_found'} end
  if st == 'refused' then return {'refused', d, x or ''} end
  return {st, d}
end

if op == 'purchase' then
  local cid, amount, cur, eid = ARGV[7], tonumber(ARGV[8]), ARGV[9], ARGV[10]
  local out = {}
  for _, rid in ipairs(open_ids()) do
    if has(redis.call('HGET', P .. 'rf:' .. rid, 'methods') or '', 'purchase') then
      local st, d = enter(rid, cid, 'purchase', eid, '', 0, amount, cur, '')
      out[#out + 1] = {rid, st, d}
    end
  end
  return out
end

if op == 'text' then
  local cid, t, ref = ARGV[7], ARGV[8], ARGV[9]
  local first, rest = string.match(t, '^(%S+) (%S+)$')
  local best = nil
  for _, rid in ipairs(open_ids()) do
    local rk = P .. 'rf:' .. rid
    local f = redis.call('HMGET', rk, 'state', 'kw', 'methods', 'starts', 'ends')
    local methods, kw = f[3] or '', f[2] or ''
    local m, code = nil, ''
    if f[1] == 'open' then
      if has(methods, 'keyword') and kw ~= '' and kw == t then
        m = 'keyword'
      elseif has(methods, 'code') and (redis.call('SISMEMBER', P .. 'rfv:' .. rid, t) == 1 or
                                       redis.call('HEXISTS', P .. 'rfu:' .. rid, t) == 1) then
        m, code = 'code', t
      elseif has(methods, 'code') and first and kw ~= '' and kw == first then
        m, code = 'code', rest
      end
    end
    if m then
      local inwin = now >= tonumber(f[4]) and now < tonumber(f[5])
      -- an open window wins over one that has not started or has ended
      if not best or (inwin and not best.inwin) then
        best = {rid = rid, m = m, code = code, inwin = inwin}
      end
    end
  end
  if not best then return {'none'} end
  local rk = P .. 'rf:' .. best.rid
  local info = redis.call('HMGET', rk, 'json', 'rtpl')
  local tpl = ''
  if (info[2] or '') ~= '' then tpl = redis.call('HGET', P .. 'tpl:' .. info[2], 'json') or '' end
  if cid == '' then
    local kind, addr = ARGV[10], ARGV[11]
    local o = redis.call('GET', P .. 'ix:' .. kind .. ':' .. addr)
    if o and redis.call('EXISTS', P .. 'c:' .. o) == 1 then
      cid = o
    elseif ARGV[13] == '1' then
      -- a lead, as lua/inbound.lua makes one; its record then finds it by address
      cid = ARGV[12]
      redis.call('HSET', P .. 'c:' .. cid, 'id', cid, 'created', fmt(now), 'updated', fmt(now),
                 'v', 1, 'lead', 1, 'a:' .. kind, addr)
      redis.call('ZADD', P .. 'contacts', 0, cid)
      redis.call('SET', P .. 'ix:' .. kind .. ':' .. addr, cid)
    else
      return {'refused', best.rid, 'no_contact', tpl, {}, info[1]}
    end
  end
  local st, d = enter(best.rid, cid, best.m, ref, best.code, 1, 0, '', '')
  if st == 'not_found' then return {'none'} end
  return {st, best.rid, d, tpl, redis.call('HGETALL', P .. 'c:' .. cid), info[1]}
end

return redis.error_reply('raffle_enter: unknown op ' .. op)
