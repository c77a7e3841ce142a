-- points_ledger: the club's per-contact state, changed atomically: business events (timeline,
-- last purchase, campaign purchase attribution), the points ledger (lots with FIFO expiry,
-- spending, adjustments), tiers, referral codes and credits.  The rules are club/points.h's;
-- the lot steps (expire, credit, debit) are lua/lib/points.lua's, shared with raffle_enter.lua.
-- Keys: P c:{cid} (fields points, points_earned, tier, last_purchase, signed_up, ref,
--       referred_by, referrals), P pl:{cid} stream ledger (capped), P pt:{cid} zset open lots
--       ("entry|remaining" scored by expiry ms), P tl:{cid} timeline, P ref:{code} -> cid,
--       P evi:{tok}:{key} / P pli:{tok}:{key} idempotent answers (TTL), P lc:{cid} and
--       P cs:{camp} (attribution, contracts), P tpl:{id} (templates, read only), P ix:{kind}:{addr},
--       P contacts, P stats.
-- ARGV: 1 prefix, 2 op (event|get|change|refcode), 3 now (ms), 4 timeline max, 5 ledger max,
--       6 expire_after (ms, 0 = never), 7 tiers "name:threshold,..." ascending; then per op:
--  event:  8 event id, 9 at (ms), 10 at (RFC 3339), 11 type, 12 contact id ('' = by address),
--          13 address kind, 14 address, 15 id for a new contact, 16 new contact is a lead (1|0),
--          17 idempotency key, 18 its ttl (s), 19 amount_c ('' = none), 20 amount text,
--          21 currency, 22 properties JSON ('' = none), 23 purchase points, 24 signup points,
--          25 referral code, 26 referrer points, 27 referee points, 28 thank-you template id,
--          29 tier template id.
--          -> {'ok'|'dup', answer JSON, contact HGETALL, referrer HGETALL, thank-you template,
--              tier template} | {'no_contact', id} | {'bad_ref', 'unknown'|'self'}
--  get:    8 contact id, 9 cursor ('' = newest), 10 limit, 11 lots max
--          -> {'ok', points, lifetime, tier, lots (member, score ...), ledger page} | {'no_contact'}
--  change: 8 contact id, 9 kind (spend|adjust), 10 delta (signed), 11 note, 12 ref, 13 by,
--          14 idempotency key, 15 its ttl, 16 tier template id
--          -> {'ok'|'dup', answer JSON, contact HGETALL, tier template} | {'no_contact'}
--          | {'insufficient', balance}
--  refcode: 8 contact id, 9.. candidate codes -> {'ok', code, created 0|1} | {'no_contact'}
--          | {'retry'}
local op = ARGV[2]
-- use: points

local tiers = {}
for name, thr in string.gmatch(ARGV[7], '([^:,]+):(%d+)') do
  tiers[#tiers + 1] = {name, tonumber(thr)}
end

-- The tier follows lifetime points; a change is written on the timeline.
local function settle_tier(cid)
  if #tiers == 0 then return nil end
  local ck = P .. 'c:' .. cid
  local life = tonumber(redis.call('HGET', ck, 'points_earned') or '0')
  local idx, name = 0, nil
  for i, t in ipairs(tiers) do
    if life >= t[2] then idx, name = i, t[1] end
  end
  local cur = redis.call('HGET', ck, 'tier') or nil
  if name == cur then return nil end
  local curidx = 0
  for i, t in ipairs(tiers) do
    if t[1] == cur then curidx = i end
  end
  if name then redis.call('HSET', ck, 'tier', name) else redis.call('HDEL', ck, 'tier') end
  -- entering a rung with threshold 0 from no tier is the start, not a promotion
  local dir = 'down'
  if idx > curidx then dir = 'up' end
  if curidx == 0 and tiers[idx] and tiers[idx][2] == 0 then dir = 'initial' end
  timeline(cid, 'type', 'tier', 'from', cur or '', 'to', name or '', 'direction', dir)
  return {from = cur or cjson.null, to = name or cjson.null, direction = dir}
end

local function state(cid)
  local v = redis.call('HMGET', P .. 'c:' .. cid, 'points', 'points_earned', 'tier')
  return tonumber(v[1] or '0'), tonumber(v[2] or '0'), v[3] or cjson.null
end

local function template(id)
  if id == '' then return '' end
  return redis.call('HGET', P .. 'tpl:' .. id, 'json') or ''
end

local function contact(cid)
  if not cid or cid == '' then return {} end
  return redis.call('HGETALL', P .. 'c:' .. cid)
end

local function exists(cid)
  return redis.call('EXISTS', P .. 'c:' .. cid) == 1
end

if op == 'event' then
  local eid, at, at_text, etype = ARGV[8], tonumber(ARGV[9]), ARGV[10], ARGV[11]
  local cid, idem = ARGV[12], ARGV[17]
  local amount_c, amount_text, cur, props = ARGV[19], ARGV[20], ARGV[21], ARGV[22]
  local code = ARGV[25]
  if idem ~= '' then
    local prev = redis.call('GET', P .. 'evi:' .. idem)
    if prev then
      local a = cjson.decode(prev)
      local rid = nil
      if type(a.referral) == 'table' and a.referral.credited == true then
        rid = a.referral.referrer_id
      end
      return {'dup', prev, contact(a.contact_id), contact(rid), template(ARGV[28]),
              template(ARGV[29])}
    end
  end
  -- everything that can refuse comes before the first write
  local newc = false
  if cid == '' then
    local kind, addr = ARGV[13], ARGV[14]
    cid = redis.call('GET', P .. 'ix:' .. kind .. ':' .. addr)
    if not cid or not exists(cid) then
      cid = ARGV[15]
      newc = true
    end
  elseif not exists(cid) then
    return {'no_contact', cid}
  end
  local rid = nil
  if code ~= '' then
    rid = redis.call('GET', P .. 'ref:' .. code)
    if not rid or not exists(rid) then return {'bad_ref', 'unknown'} end
    if rid == cid then return {'bad_ref', 'self'} end
  end
  local ck = P .. 'c:' .. cid
  if newc then
    local kind, addr = ARGV[13], ARGV[14]
    redis.call('HSET', ck, 'id', cid, 'a:' .. kind, addr, 'created', fmt(now), 'updated',
               fmt(now), 'v', 1)
    if ARGV[16] == '1' then redis.call('HSET', ck, 'lead', 1) end
    redis.call('SET', P .. 'ix:' .. kind .. ':' .. addr, cid)
    redis.call('ZADD', P .. 'contacts', 0, cid)
  end
  expire(cid)

  -- attribution: the last campaign touch, if the purchase falls inside its window
  local attr = nil
  if etype == 'purchase' and amount_c ~= '' then
    local lc = redis.call('HMGET', P .. 'lc:' .. cid, 'camp', 'var', 'msg', 'at', 'win')
    local lat, win = tonumber(lc[4] or ''), tonumber(lc[5] or '')
    if lc[1] and lc[1] ~= '' and lat and win and at >= lat and at - lat <= win then
      local sk = P .. 'cs:' .. lc[1]
      redis.call('HINCRBY', sk, 'purchases', 1)
      redis.call('HINCRBY', sk, 'revenue_c', amount_c)
      local var = lc[2] or ''
      if var ~= '' then
        redis.call('HINCRBY', sk, var .. ':purchases', 1)
        redis.call('HINCRBY', sk, var .. ':revenue_c', amount_c)
      end
      attr = {campaign = lc[1], variant = var, message_id = lc[3] or ''}
    end
    local lp = tonumber(redis.call('HGET', ck, 'last_purchase') or '0')
    if at > lp then redis.call('HSET', ck, 'last_purchase', fmt(at)) end
  end
  local f = {'type', 'event', 'event', etype, 'event_id', eid, 'occurred_at', at_text}
  if amount_c ~= '' then
    f[#f + 1] = 'amount'; f[#f + 1] = amount_text
    f[#f + 1] = 'currency'; f[#f + 1] = cur
  end
  if props ~= '' then f[#f + 1] = 'properties'; f[#f + 1] = props end
  if attr then
    f[#f + 1] = 'camp'; f[#f + 1] = attr.campaign
    f[#f + 1] = 'var'; f[#f + 1] = attr.variant
    f[#f + 1] = 'm'; f[#f + 1] = attr.message_id
  end
  timeline(cid, unpack(f))

  local earned = 0
  local referral = cjson.null
  local credited_rid = nil
  if etype == 'signup' then
    if redis.call('HSETNX', ck, 'signed_up', fmt(at)) == 1 then
      local sp = tonumber(ARGV[24])
      if credit(cid, sp, 'signup', eid, at) then earned = earned + sp end
      if rid then
        if redis.call('HSETNX', ck, 'referred_by', rid) == 1 then
          local rp, ep = tonumber(ARGV[26]), tonumber(ARGV[27])
          redis.call('HINCRBY', P .. 'c:' .. rid, 'referrals', 1)
          expire(rid)
          credit(rid, rp, 'referral', cid, at)
          if credit(cid, ep, 'referred', rid, at) then earned = earned + ep end
          timeline(cid, 'type', 'referral', 'role', 'referee', 'referrer', rid, 'code', code,
                   'points', fmt(ep))
          timeline(rid, 'type', 'referral', 'role', 'referrer', 'referee', cid, 'code', code,
                   'points', fmt(rp))
          credited_rid = rid
          referral = {credited = true, referrer_id = rid, code = code, referrer_points = rp,
                      referee_points = ep}
        else
          referral = {credited = false, reason = 'already_referred', referrer_id = rid,
                      code = code}
        end
      end
    elseif rid then
      referral = {credited = false, reason = 'already_signed_up', referrer_id = rid, code = code}
    end
  end
  local ep = tonumber(ARGV[23])
  if ep > 0 then
    credit(cid, ep, 'purchase', eid, at)
    earned = earned + ep
  end
  -- a backdated credit may already be past its expiry
  expire(cid)
  local tc = settle_tier(cid)
  if credited_rid then
    expire(credited_rid)
    referral.referrer_tier_change = settle_tier(credited_rid) or cjson.null
  end
  local bal, life, tier = state(cid)
  local ans = {id = eid, type = etype, contact_id = cid, contact_created = newc, at = at_text,
               points = {earned = earned, balance = bal, lifetime = life, tier = tier,
                         tier_change = tc or cjson.null},
               referral = referral, attribution = cjson.null}
  if attr then
    local a = {campaign = attr.campaign, variant = cjson.null, message_id = cjson.null}
    if attr.variant ~= '' then a.variant = attr.variant end
    if attr.message_id ~= '' then a.message_id = attr.message_id end
    ans.attribution = a
  end
  if amount_c ~= '' then
    ans.amount = amount_text
    ans.currency = cur
  end
  local enc = cjson.encode(ans)
  if props ~= '' then
    -- the properties as given (cjson would turn [] into {} and round big numbers)
    enc = string.sub(enc, 1, -2) .. ',"properties":' .. props .. '}'
  end
  if idem ~= '' then redis.call('SET', P .. 'evi:' .. idem, enc, 'EX', ARGV[18]) end
  redis.call('HINCRBY', P .. 'stats', 'events', 1)
  return {'ok', enc, contact(cid), contact(credited_rid), template(ARGV[28]), template(ARGV[29])}
end

if op == 'get' then
  local cid, cursor, limit, lotsmax = ARGV[8], ARGV[9], tonumber(ARGV[10]), tonumber(ARGV[11])
  if not exists(cid) then return {'no_contact'} end
  expire(cid)
  local bal, life, tier = state(cid)
  if tier == cjson.null then tier = '' end
  local lots = redis.call('ZRANGE', P .. 'pt:' .. cid, 0, lotsmax - 1, 'WITHSCORES')
  local last = '+'
  if cursor ~= '' then last = '(' .. cursor end
  local page = redis.call('XREVRANGE', P .. 'pl:' .. cid, last, '-', 'COUNT', limit)
  return {'ok', fmt(bal), fmt(life), tier, lots, page}
end

if op == 'change' then
  local cid, kind, delta, note, ref, by = ARGV[8], ARGV[9], tonumber(ARGV[10]), ARGV[11],
                                          ARGV[12], ARGV[13]
  local idem = ARGV[14]
  if idem ~= '' then
    local prev = redis.call('GET', P .. 'pli:' .. idem)
    if prev then return {'dup', prev, contact(cid), template(ARGV[16])} end
  end
  if not exists(cid) then return {'no_contact'} end
  expire(cid)
  local lid
  if delta < 0 then
    local short
    lid, short = debit(cid, -delta, kind, ref, note, by)
    if not lid then return {'insufficient', fmt(short)} end
    if kind == 'adjust' then
      -- a correction: lifetime points go down too (not below 0)
      local ck = P .. 'c:' .. cid
      local life = tonumber(redis.call('HGET', ck, 'points_earned') or '0') + delta
      if life < 0 then life = 0 end
      redis.call('HSET', ck, 'points_earned', fmt(life))
    end
  else
    lid = credit(cid, delta, kind, ref, now, note, by)
  end
  expire(cid)
  local tc = settle_tier(cid)
  local bal, life, tier = state(cid)
  local ans = {contact_id = cid, kind = kind, delta = delta, entry = lid, balance = bal,
               lifetime = life, tier = tier, tier_change = tc or cjson.null}
  local enc = cjson.encode(ans)
  if idem ~= '' then redis.call('SET', P .. 'pli:' .. idem, enc, 'EX', ARGV[15]) end
  return {'ok', enc, contact(cid), template(ARGV[16])}
end

if op == 'refcode' then
  local cid = ARGV[8]
  if not exists(cid) then return {'no_contact'} end
  local ck = P .. 'c:' .. cid
  local have = redis.call('HGET', ck, 'ref')
  if have then return {'ok', have, 0} end
  for i = 9, #ARGV do
    if redis.call('SET', P .. 'ref:' .. ARGV[i], cid, 'NX') then
      redis.call('HSET', ck, 'ref', ARGV[i])
      return {'ok', ARGV[i], 1}
    end
  end
  return {'retry'}
end

return redis.error_reply('points_ledger: unknown op ' .. op)
