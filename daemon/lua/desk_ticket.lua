-- desk_ticket: the complaints desk's tickets and their notifications (daemon/store_desk.c,
-- daemon/desk_notify.c, docs/desk.md).  ARGV[2] is the mode.
-- Keys: P deskin (the desk's inbox: lua/inbound.lua adds every reply that is not for an open
--       or assigned ticket, in the script that records it: aid (the audit entry), channel,
--       from, to, text, provider, provider_id, contact, camp) and P desk:incur (the last inbox
--       entry the desk went past; the entries up to it are trimmed);
--       P tk:{id} hash ticket; P tkm:{id} list the conversation (JSON, lib/desk.lua);
--       P tickets, P tks:{state}, P tkt:{team}, P tkt:{team}:{state} zsets of ticket ids
--       (score 0, id order); P tkc:{cid} string the contact's current ticket (its keys are
--       registered in the contact's erasure registry P cx:{cid}, lua/contact_erase.lua);
--       P tkfr:{team} zset "{ticket}:{first response ms}" by answer time;
--       P deskq zset notifications due "{ticket}|{event}|{kind}" by due time, P deskqa hash
--       their attempts; read: P c:{cid} (tier, tags), P cp:{camp} (fwd), P team:{id} (nw, ne,
--       nc); writes P tl:{cid} (answers), P cx:{cid} (the erasure registry) and P stats.
--
-- 'scan'   3 now, 4 batch
--          -> {last inbox id seen or '', rules json or '', {{inbox id, audit id, channel, from,
--              to, text, provider, provider id, contact, tier, tags json, campaign, forward
--              team}...}}
-- 'open'   3 now, 4 reopen window (ms), 5 last inbox id, 6 customer transitions without an
--          operator, 7 with one ("from:to,..."), then from 8 per reply 15
--          values: inbox id, audit id, at (ms), new ticket id, team, via, rule, contact,
--          channel, from, to, text, provider, provider id, campaign
--          -> {{audit id, ticket id, 'new'|'append'|'reopen'} | {audit id, '', 'seen'}...}
--          (an inbox entry at or before P desk:incur was opened before: 'seen', nothing
--          written; the cursor only moves here, so a reply is opened exactly once across
--          instances and repeats)
-- 'assign' 3 ticket, 4 now, 5 operator, 6 transitions -> {'ok', hash} | {'not_found'} |
--          {'conflict', state}
-- 'close'  the same ('' operator = keep)
-- 'peek'   3 ticket -> {state, contact, channel, from, outs, team} (state nil: none)
-- 'answer' 3 ticket, 4 now, 5 operator, 6 text, 7 message id, 8 transitions, 9 timeline max
--          -> {'ok'|'dup', hash, first response ms or -1} | {'not_found'} | {'conflict', state}
-- 'claim'  3 now, 4 lease (ms), 5 batch -> {{member, attempts, ticket, event, kind, target,
--          team, state, channel, contact, from, campaign, created, last text}...}
-- 'done'   3 member, 4 now, 5 ok|retry|fail, 6 due (retry), 7 detail -> {'ok'}
-- use: desk
local P, mode = ARGV[1], ARGV[2]
local FR_KEEP = 400 * 86400000

local function fields(arr)
  local f = {}
  for i = 1, #arr - 1, 2 do f[arr[i]] = arr[i + 1] end
  return f
end

-- stream ids "ms-seq": a after b?
local function sid_after(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not am then return false end
  if not bm then return true end
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end

-- Move the inbox cursor to last and drop the entries up to it (the replies are on tickets
-- now; the audit stream keeps its own copy).
local function advance(last)
  if last == '' then return end
  local k = P .. 'desk:incur'
  local cur = redis.call('GET', k) or ''
  if sid_after(last, cur) then
    redis.call('SET', k, last)
    local ms, seq = string.match(last, '^(%d+)-(%d+)$')
    redis.call('XTRIM', P .. 'deskin', 'MINID', ms .. '-' .. string.format('%d', seq + 1))
  end
end

local function trans(s)
  local t = {}
  for from, to in string.gmatch(s, '(%a+):(%a+)') do t[from] = to end
  return t
end

local function index_add(tk, team, state)
  redis.call('ZADD', P .. 'tks:' .. state, 0, tk)
  redis.call('ZADD', P .. 'tkt:' .. team .. ':' .. state, 0, tk)
end

local function index_move(tk, team, from, to)
  if from == to then return end
  redis.call('ZREM', P .. 'tks:' .. from, tk)
  redis.call('ZREM', P .. 'tkt:' .. team .. ':' .. from, tk)
  index_add(tk, team, to)
end

local KINDS = {webhook = 'nw', email = 'ne', chat = 'nc'}

local targets = {} -- team -> its nw, ne, nc, read once per script

local function enqueue(tk, team, event, now)
  local t = targets[team]
  if not t then
    t = redis.call('HMGET', P .. 'team:' .. team, 'nw', 'ne', 'nc')
    targets[team] = t
  end
  local i = 0
  for _, kind in ipairs({'webhook', 'email', 'chat'}) do
    i = i + 1
    if t[i] and t[i] ~= '' then
      local m = tk .. '|' .. event .. '|' .. kind
      redis.call('ZADD', P .. 'deskq', 'NX', now, m)
      redis.call('HSET', P .. 'tk:' .. tk, 'nt:' .. kind, 'pending')
    end
  end
end

if mode == 'scan' then
  local batch = tonumber(ARGV[4])
  local cur = redis.call('GET', P .. 'desk:incur') or '0-0'
  local es = redis.call('XRANGE', P .. 'deskin', '(' .. cur, '+', 'COUNT', batch)
  if #es == 0 then return {'', '', {}} end
  local out = {}
  for _, e in ipairs(es) do
    local f = fields(e[2])
    local cid = f.contact or ''
    local tier, tags, camp, fwd = '', '', f.camp or '', ''
    if cid ~= '' then
      local c = redis.call('HMGET', P .. 'c:' .. cid, 'tier', 'tags')
      tier, tags = c[1] or '', c[2] or ''
    end
    if camp ~= '' then fwd = redis.call('HGET', P .. 'cp:' .. camp, 'fwd') or '' end
    out[#out + 1] = {e[1], f.aid or '', f.channel or '', f.from or '', f.to or '', f.text or '',
                     f.provider or '', f.provider_id or '', cid, tier, tags, camp, fwd}
  end
  return {es[#es][1], redis.call('HGET', P .. 'desk:rules', 'json') or '', out}

elseif mode == 'open' then
  local now, reopen, last = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
  local cust = {[false] = trans(ARGV[6]), [true] = trans(ARGV[7])}
  local cur = redis.call('GET', P .. 'desk:incur') or ''
  local res = {}
  local n = {opened = 0, appended = 0, reopened = 0}
  for i = 8, #ARGV - 14, 15 do
    local did, aid, at, tk, team = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3],
                                   ARGV[i + 4]
    local via, rule, cid, ch, from = ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8],
                                     ARGV[i + 9]
    local to, text, prov, pid, camp = ARGV[i + 10], ARGV[i + 11], ARGV[i + 12], ARGV[i + 13],
                                      ARGV[i + 14]
    if not sid_after(did, cur) then
      -- the cursor went past it: opened before (another instance, a repeat)
      res[#res + 1] = {aid, '', 'seen'}
    else
      local kind, ctk = 'new', ''
      local h
      if cid ~= '' then ctk = redis.call('GET', P .. 'tkc:' .. cid) or '' end
      if ctk ~= '' then
        h = redis.call('HMGET', P .. 'tk:' .. ctk, 'state', 'operator', 'answered_at', 'team',
                       'n')
        if h[1] == 'open' or h[1] == 'assigned' then
          kind = 'append'
        elseif h[1] == 'answered' and reopen > 0 and at - (tonumber(h[3]) or 0) <= reopen then
          kind = 'reopen'
        end
      end
      if kind == 'new' then
        local k = P .. 'tk:' .. tk
        redis.call('HSET', k, 'id', tk, 'team', team, 'state', 'open', 'via', via, 'rule', rule,
                   'contact', cid, 'channel', ch, 'from', from, 'to', to, 'camp', camp,
                   'created', at, 'updated', now, 'last_in', at, 'n', 1, 'outs', 0,
                   'reopened', 0, 'last_text', text)
        desk_conv(P, tk, {dir = 'in', at = at, channel = ch, text = text, inbound = aid,
                          provider = prov, provider_id = pid})
        redis.call('ZADD', P .. 'tickets', 0, tk)
        redis.call('ZADD', P .. 'tkt:' .. team, 0, tk)
        index_add(tk, team, 'open')
        if cid ~= '' then
          redis.call('SET', P .. 'tkc:' .. cid, tk)
          redis.call('SADD', P .. 'cx:' .. cid, 'k tkc:' .. cid, 'k tk:' .. tk, 'k tkm:' .. tk)
        end
        enqueue(tk, team, 'opened', now)
        n.opened = n.opened + 1
      else
        tk = ctk
        local k = P .. 'tk:' .. tk
        desk_append(P, tk, h[5], now, at, ch, from, to, text, aid, prov, pid)
        if kind == 'reopen' then
          local op = (h[2] and h[2] ~= '') and true or false
          local to_state = cust[op][h[1]] or 'open'
          redis.call('HSET', k, 'state', to_state)
          redis.call('HINCRBY', k, 'reopened', 1)
          index_move(tk, h[4], h[1], to_state)
          desk_conv(P, tk, {dir = 'event', at = now, event = 'reopened', state = to_state})
          enqueue(tk, h[4], 'reopened', now)
          n.reopened = n.reopened + 1
        else
          n.appended = n.appended + 1
        end
      end
      res[#res + 1] = {aid, tk, kind}
    end
  end
  advance(last)
  for what, c in pairs(n) do
    if c > 0 then redis.call('HINCRBY', P .. 'stats', 'desk:' .. what, c) end
  end
  return res

elseif mode == 'assign' or mode == 'close' then
  local tk, now, op = ARGV[3], ARGV[4], ARGV[5]
  local k = P .. 'tk:' .. tk
  local h = redis.call('HMGET', k, 'state', 'team', 'operator')
  if not h[1] then return {'not_found'} end
  local to = trans(ARGV[6])[h[1]]
  if not to then return {'conflict', h[1]} end
  if mode == 'assign' then
    redis.call('HSET', k, 'operator', op)
    if not redis.call('HGET', k, 'assigned_at') then redis.call('HSET', k, 'assigned_at', now) end
    desk_conv(P, tk, {dir = 'event', at = tonumber(now), event = 'assigned', operator = op})
  else
    redis.call('HSET', k, 'closed_at', now)
    if op ~= '' then redis.call('HSET', k, 'closed_by', op) end
    desk_conv(P, tk, {dir = 'event', at = tonumber(now), event = 'closed', operator = op})
    redis.call('HINCRBY', P .. 'stats', 'desk:closed', 1)
  end
  redis.call('HSET', k, 'state', to, 'updated', now)
  index_move(tk, h[2], h[1], to)
  return {'ok', redis.call('HGETALL', k)}

elseif mode == 'peek' then
  return redis.call('HMGET', P .. 'tk:' .. ARGV[3], 'state', 'contact', 'channel', 'from', 'outs',
                    'team')

elseif mode == 'answer' then
  local tk, now, op, text, mid, tlmax = ARGV[3], tonumber(ARGV[4]), ARGV[5], ARGV[6], ARGV[7],
                                        tonumber(ARGV[9])
  local k = P .. 'tk:' .. tk
  local h = redis.call('HMGET', k, 'state', 'team', 'contact', 'created', 'first_answer',
                       'operator', 'channel', 'fr')
  if not h[1] then return {'not_found'} end
  if redis.call('HEXISTS', k, 'm:' .. mid) == 1 then
    return {'dup', redis.call('HGETALL', k), tonumber(h[8]) or -1}
  end
  local to = trans(ARGV[8])[h[1]]
  if not to then return {'conflict', h[1]} end
  redis.call('HSET', k, 'state', to, 'updated', now, 'answered_at', now, 'm:' .. mid, 1,
             'last_out', now)
  if not h[6] or h[6] == '' then redis.call('HSET', k, 'operator', op) end
  redis.call('HINCRBY', k, 'outs', 1)
  desk_conv(P, tk, {dir = 'out', at = now, channel = h[7], text = text, operator = op, message_id = mid})
  index_move(tk, h[2], h[1], to)
  local fr = -1
  if not h[5] then
    fr = now - (tonumber(h[4]) or now)
    if fr < 0 then fr = 0 end
    redis.call('HSET', k, 'first_answer', now, 'fr', fr)
    local fk = P .. 'tkfr:' .. h[2]
    redis.call('ZADD', fk, now, tk .. ':' .. fr)
    redis.call('ZREMRANGEBYSCORE', fk, '-inf', '(' .. (now - FR_KEEP))
  end
  if h[3] ~= '' and tlmax > 0 then
    redis.call('XADD', P .. 'tl:' .. h[3], 'MAXLEN', '~', tlmax, '*', 'type', 'desk_answer',
               'ticket', tk, 'team', h[2], 'operator', op, 'channel', h[7], 'm', mid,
               'text', text)
  end
  redis.call('HINCRBY', P .. 'stats', 'desk:answered', 1)
  return {'ok', redis.call('HGETALL', k), fr}

elseif mode == 'claim' then
  local now, lease, batch = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
  local q = P .. 'deskq'
  local out = {}
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', q, '-inf', now, 'LIMIT', 0, batch)) do
    redis.call('ZADD', q, now + lease, m)
    local n = redis.call('HINCRBY', P .. 'deskqa', m, 1)
    local tk, event, kind = string.match(m, '^([^|]+)|([^|]+)|([^|]+)$')
    local h = redis.call('HMGET', P .. 'tk:' .. (tk or ''), 'team', 'state', 'channel', 'contact',
                         'from', 'camp', 'created', 'last_text')
    local target = ''
    if h[1] and KINDS[kind or ''] then
      target = redis.call('HGET', P .. 'team:' .. h[1], KINDS[kind]) or ''
    end
    out[#out + 1] = {m, n, tk or '', event or '', kind or '', target, h[1] or '', h[2] or '',
                     h[3] or '', h[4] or '', h[5] or '', h[6] or '', h[7] or '', h[8] or ''}
  end
  return out

elseif mode == 'done' then
  local m, now, outcome, detail = ARGV[3], ARGV[4], ARGV[5], ARGV[7]
  local q = P .. 'deskq'
  local tk, _, kind = string.match(m, '^([^|]+)|([^|]+)|([^|]+)$')
  local k = P .. 'tk:' .. (tk or '')
  local live = tk and redis.call('EXISTS', k) == 1
  if outcome == 'retry' then
    redis.call('ZADD', q, 'XX', ARGV[6], m)
    if live then redis.call('HSET', k, 'nt:' .. kind, 'retrying: ' .. detail) end
    return {'ok'}
  end
  redis.call('ZREM', q, m)
  redis.call('HDEL', P .. 'deskqa', m)
  if live then
    if outcome == 'ok' then
      redis.call('HSET', k, 'nt:' .. kind, 'ok', 'nt:' .. kind .. ':at', now)
    else
      redis.call('HSET', k, 'nt:' .. kind, 'failed: ' .. detail)
    end
  end
  redis.call('HINCRBY', P .. 'stats', 'desk:notify_' .. outcome, 1)
  return {'ok'}

end
return redis.error_reply('desk_ticket: unknown mode')
