-- msg_settle: the one setter of a message's state after creation, for a batch of messages.
-- ARGV: 1 prefix, then items; each item is a count n followed by n arguments:
--       id, now, from ('' = any), to, owner ('' = no check), reason, timeline max,
--       due (ms, for 'scheduled'), group, then field/value pairs to store.
--       The pair ('!revoke', channel) is not stored: it withdraws the contact's consent for
--       that channel (a chat bot blocked by the user, ...).  ('!await', channel) puts a sent
--       message in that channel's await set for delivery status polling.  ('!ttl', seconds)
--       lets an ended message and its history expire after that long (retention).
--       ('!park', campaign) with to 'scheduled': the message waits in the campaign's parked
--       set (cpk:) instead of the schedule, until the campaign resumes or is cancelled.
-- Returns one result per item, in order:
--       {'ok', from} | {'conflict', current} | {'gone'} | {'bad_transition', current}.
local P = ARGV[1]
-- must match the table in daemon/msg.c
local allowed = {
  scheduled = {ready = 1, cancelled = 1, expired = 1, suppressed = 1},
  ready = {sending = 1, cancelled = 1, expired = 1, suppressed = 1},
  sending = {sent = 1, scheduled = 1, failed = 1, suppressed = 1, expired = 1, sending = 1},
  sent = {delivered = 1, failed = 1},
}

local final = {sent = 1, delivered = 1, failed = 1, suppressed = 1, expired = 1, cancelled = 1}

-- A campaign message's counters (cs:{camp}, overall and per arm), its budget reservation
-- (rsv: refunded unless sent, corrected to the provider's cost when sent), and on 'sent'
-- the contact's last campaign touch (lc:) for reply and revenue attribution.  Every sent
-- message of a contact also sets lc: lm (its id) and lmat (ms), which lua/inbound.lua reads.
local function campaign(f, id, st, to, reason, fields, now)
  local camp, arm, rsv = f[6], f[7] or 'A', tonumber(f[8] or '0') or 0
  local cs = P .. 'cs:' .. camp
  local function inc(k, by)
    redis.call('HINCRBY', cs, k, by); redis.call('HINCRBY', cs, arm .. ':' .. k, by)
  end
  if final[to] and not final[st] then redis.call('HINCRBY', cs, 'done', 1) end
  if to == 'sent' or to == 'failed' or to == 'suppressed' or to == 'expired' then inc(to, 1) end
  if to == 'suppressed' and reason ~= '' then redis.call('HINCRBY', cs, 'suppressed:' .. reason, 1) end
  if rsv > 0 then
    local delta = -rsv
    if to == 'sent' then
      delta = 0
      for i = 1, #fields - 1, 2 do
        if fields[i] == 'cost_micros' then delta = (tonumber(fields[i + 1]) or rsv) - rsv end
      end
    end
    if delta ~= 0 then inc('cost_micros', delta) end
    if to ~= 'sent' then redis.call('HDEL', P .. 'm:' .. id, 'rsv') end
  end
  if to == 'sent' and f[5] then
    local win = redis.call('HGET', P .. 'cp:' .. camp, 'win') or '0'
    redis.call('HSET', P .. 'lc:' .. f[5], 'camp', camp, 'var', arm, 'msg', id, 'at', now,
               'win', win, 'lm', id, 'lmat', now)
    redis.call('SADD', P .. 'eng:sent:' .. camp, f[5])
  end
end

local function settle(a, n)
  local id, now, from, to, owner, reason = a[1], a[2], a[3], a[4], a[5], a[6]
  local mk = P .. 'm:' .. id
  local f = redis.call('HMGET', mk, 'state', 'owner', 'sid', 'lane', 'contact', 'camp', 'var',
                       'rsv', 'category')
  local st = f[1]
  if not st then return {'gone'} end
  if from ~= '' and st ~= from then return {'conflict', st} end
  if owner ~= '' and f[2] ~= owner then return {'conflict', st} end
  if not (allowed[st] and allowed[st][to]) then return {'bad_transition', st} end
  local fields, revoke, await, ttl, park = {'state', to, 'updated', now}, nil, nil, 0, nil
  for i = 10, n - 1, 2 do
    if a[i] == '!revoke' then
      revoke = a[i + 1]
    elseif a[i] == '!await' then
      await = a[i + 1]
    elseif a[i] == '!ttl' then
      ttl = tonumber(a[i + 1]) or 0
    elseif a[i] == '!park' then
      park = a[i + 1]
    else
      fields[#fields + 1] = a[i]; fields[#fields + 1] = a[i + 1]
    end
  end
  if reason ~= '' then fields[#fields + 1] = 'last_error'; fields[#fields + 1] = reason end
  if to == 'scheduled' and not park then fields[#fields + 1] = 'due'; fields[#fields + 1] = a[8] end
  if park then fields[#fields + 1] = 'parked'; fields[#fields + 1] = '1' end
  redis.call('HSET', mk, unpack(fields))
  if st == 'sending' then
    if f[3] then
      local q = P .. 'q:' .. f[4]
      redis.call('XACK', q, a[9], f[3]); redis.call('XDEL', q, f[3])
    end
    redis.call('HDEL', mk, 'lease', 'owner', 'sid')
  end
  if to == 'scheduled' and park then
    redis.call('SADD', P .. 'cpk:' .. park, id)
  elseif to == 'scheduled' then
    redis.call('ZADD', P .. 'due', a[8], id)
  elseif to == 'cancelled' or to == 'suppressed' or to == 'expired' then
    redis.call('ZREM', P .. 'due', id)
  end
  if to == 'failed' or to == 'expired' then
    redis.call('XADD', P .. 'dlq', '*', 'm', id, 'reason', reason, 'at', now)
  end
  redis.call('HINCRBY', P .. 'stats', to, 1)
  if to == 'suppressed' and reason ~= '' then
    redis.call('HINCRBY', P .. 'stats', 'suppressed:' .. reason, 1)
  end
  local h = '{"at":' .. now .. ',"state":"' .. to .. '"'
  if reason ~= '' then h = h .. ',"reason":' .. cjson.encode(reason) end
  if redis.call('RPUSH', P .. 'mh:' .. id, h .. '}') > 64 then
    redis.call('LTRIM', P .. 'mh:' .. id, -64, -1)
  end
  if f[6] then
    campaign(f, id, st, to, reason, fields, now)
  elseif to == 'sent' and f[5] then
    -- the last message sent to the contact: a reply without a campaign touch answers it
    redis.call('HSET', P .. 'lc:' .. f[5], 'lm', id, 'lmat', now)
  end
  if st == 'sending' and to ~= 'sent' and f[5] and f[9] then
    -- not sent after all: it does not count against the frequency cap
    redis.call('ZREM', P .. 'fc:' .. f[5] .. ':' .. f[9], id)
  end
  local tlmax = tonumber(a[7])
  if revoke and f[5] and redis.call('EXISTS', P .. 'c:' .. f[5]) == 1 then
    local ck = P .. 'c:' .. f[5]
    local pj = redis.call('HGET', ck, 'prefs')
    local p = {}
    if pj then p = cjson.decode(pj) end
    if type(p.consent) ~= 'table' then p.consent = {} end
    p.consent[revoke] = false
    redis.call('HSET', ck, 'prefs', cjson.encode(p), 'updated', now)
    redis.call('HINCRBY', P .. 'stats', 'consent_revoked:' .. revoke, 1)
    if tlmax > 0 then
      redis.call('XADD', P .. 'tl:' .. f[5], 'MAXLEN', '~', tlmax, '*', 'type', 'consent',
                 'channel', revoke, 'consent', 'revoked', 'reason', reason, 'm', id)
    end
  end
  if to == 'sent' and await then
    -- the provider has no callbacks: dlr_poll.c asks about it later
    redis.call('ZADD', P .. 'await:' .. await, now, id)
  end
  if to == 'sent' then
    -- A delivery report that came before this write (msg_report kept it).
    local early = redis.call('HMGET', mk, 'dlr_early', 'dlr_code')
    if early[1] then
      local fin = 'delivered'
      if early[1] == 'undelivered' then fin = 'failed' end
      redis.call('HSET', mk, 'state', fin, 'reported_at', now)
      redis.call('HDEL', mk, 'dlr_early')
      if fin == 'failed' then
        local r = 'undelivered: ' .. (early[2] or '')
        redis.call('HSET', mk, 'last_error', r)
        redis.call('XADD', P .. 'dlq', '*', 'm', id, 'reason', r, 'at', now)
        redis.call('HINCRBY', P .. 'stats', 'undelivered', 1)
      else
        redis.call('HINCRBY', P .. 'stats', 'delivered', 1)
      end
      redis.call('RPUSH', P .. 'mh:' .. id, '{"at":' .. now .. ',"state":"' .. fin .. '"}')
      to = fin
      if f[6] then
        local k = 'delivered'
        if fin == 'failed' then k = 'undelivered' end
        redis.call('HINCRBY', P .. 'cs:' .. f[6], k, 1)
        redis.call('HINCRBY', P .. 'cs:' .. f[6], (f[7] or 'A') .. ':' .. k, 1)
      end
    end
  end
  if f[5] and tlmax > 0 and to ~= 'scheduled' and to ~= 'sending' then
    redis.call('XADD', P .. 'tl:' .. f[5], 'MAXLEN', '~', tlmax, '*', 'type', 'message',
               'm', id, 'state', to, 'reason', reason)
  end
  if ttl > 0 and final[to] then
    -- retention: an ended message and its history go after ttl seconds
    redis.call('EXPIRE', mk, ttl)
    redis.call('EXPIRE', P .. 'mh:' .. id, ttl)
  end
  return {'ok', st}
end

local out, i = {}, 2
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local a = {}
  for k = 1, n do a[k] = ARGV[i + k] end
  out[#out + 1] = settle(a, n)
  i = i + n + 1
end
return out
