-- lib/points.lua: the points ledger's lot steps, one copy for every script that changes
-- points.  tools/embed-lua.sh puts this text where a script has the line `-- use: points`
-- (points_ledger.lua, raffle_enter.lua): Redis scripts cannot call each other, so each
-- embedded script carries it, and its SHA is that of the whole embedded text.
-- The rules are club/points.h's; docs/club.md describes the ledger.
-- Keys: P c:{cid} (fields points, points_earned), P pl:{cid} stream ledger (capped),
--       P pt:{cid} zset open lots ("entry|remaining" scored by expiry ms), P tl:{cid}
--       timeline.
-- ARGV a script using this must keep: 1 prefix, 3 now (ms), 4 timeline max, 5 ledger max,
--       6 expire_after (ms, 0 = never).
-- Defines (locals): P, now, tlmax, lmax, expire_after, NEVER, fmt, timeline, ledger,
--       lot_parse, expire, credit, debit.
local P, now = ARGV[1], tonumber(ARGV[3])
local tlmax, lmax, expire_after = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local NEVER = 253402300799999
local function fmt(n) return string.format('%d', n) end

local function timeline(cid, ...)
  if tlmax > 0 then redis.call('XADD', P .. 'tl:' .. cid, 'MAXLEN', '~', tlmax, '*', ...) end
end

local function ledger(cid, f)
  return redis.call('XADD', P .. 'pl:' .. cid, 'MAXLEN', '~', lmax, '*', unpack(f))
end

local function lot_parse(m)
  local sep = string.find(m, '|', 1, true)
  return string.sub(m, 1, sep - 1), tonumber(string.sub(m, sep + 1))
end

-- Lots expired at now go, whole, oldest expiry first; the points expired.
local function expire(cid)
  local pk = P .. 'pt:' .. cid
  local lots = redis.call('ZRANGEBYSCORE', pk, '-inf', now, 'WITHSCORES')
  if #lots == 0 then return 0 end
  local ck = P .. 'c:' .. cid
  local bal = tonumber(redis.call('HGET', ck, 'points') or '0')
  local total = 0
  for i = 1, #lots, 2 do
    local lot, rem = lot_parse(lots[i])
    bal = bal - rem
    total = total + rem
    ledger(cid, {'at', lots[i + 1], 'delta', fmt(-rem), 'balance', fmt(bal), 'reason', 'expire',
                 'ref', lot})
  end
  redis.call('ZREMRANGEBYSCORE', pk, '-inf', now)
  redis.call('HSET', ck, 'points', fmt(bal))
  timeline(cid, 'type', 'points', 'delta', fmt(-total), 'balance', fmt(bal), 'reason', 'expire')
  return total
end

-- A credit is one lot expiring at + expire_after.
local function credit(cid, pts, reason, ref, at, note, by)
  if pts <= 0 then return nil end
  local ck = P .. 'c:' .. cid
  local exp = NEVER
  if expire_after > 0 and at + expire_after < NEVER then exp = at + expire_after end
  local bal = redis.call('HINCRBY', ck, 'points', fmt(pts))
  redis.call('HINCRBY', ck, 'points_earned', fmt(pts))
  local f = {'at', fmt(at), 'delta', fmt(pts), 'balance', fmt(bal), 'reason', reason, 'ref', ref}
  if exp ~= NEVER then f[#f + 1] = 'expires_at'; f[#f + 1] = fmt(exp) end
  if note and note ~= '' then f[#f + 1] = 'note'; f[#f + 1] = note end
  if by and by ~= '' then f[#f + 1] = 'by'; f[#f + 1] = by end
  local lid = ledger(cid, f)
  redis.call('ZADD', P .. 'pt:' .. cid, fmt(exp), lid .. '|' .. fmt(pts))
  timeline(cid, 'type', 'points', 'delta', fmt(pts), 'balance', fmt(bal), 'reason', reason,
           'ref', ref)
  return lid
end

-- Take n points, first to expire first; nil and the balance when short.  Never changes
-- lifetime points (points_earned) or the tier.
local function debit(cid, n, reason, ref, note, by)
  local pk = P .. 'pt:' .. cid
  local lots = redis.call('ZRANGE', pk, 0, -1, 'WITHSCORES')
  local avail = 0
  for i = 1, #lots, 2 do
    local _, rem = lot_parse(lots[i])
    avail = avail + rem
  end
  if avail < n then return nil, avail end
  local need = n
  for i = 1, #lots, 2 do
    if need == 0 then break end
    local lot, rem = lot_parse(lots[i])
    redis.call('ZREM', pk, lots[i])
    if rem > need then
      redis.call('ZADD', pk, lots[i + 1], lot .. '|' .. fmt(rem - need))
      need = 0
    else
      need = need - rem
    end
  end
  local bal = redis.call('HINCRBY', P .. 'c:' .. cid, 'points', fmt(-n))
  local f = {'at', fmt(now), 'delta', fmt(-n), 'balance', fmt(bal), 'reason', reason, 'ref', ref}
  if note and note ~= '' then f[#f + 1] = 'note'; f[#f + 1] = note end
  if by and by ~= '' then f[#f + 1] = 'by'; f[#f + 1] = by end
  local lid = ledger(cid, f)
  timeline(cid, 'type', 'points', 'delta', fmt(-n), 'balance', fmt(bal), 'reason', reason,
           'ref', ref)
  return lid, bal
end
