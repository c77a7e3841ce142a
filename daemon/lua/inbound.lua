-- inbound: record one inbound message and apply what the router decided, atomically
-- (daemon/inbound_route.c; docs/inbound.md).  ARGV[2] is the mode.
-- Keys: P inb:{provider}:{provider id} (dedupe, TTL, "contact action"), P inbound (capped
--       audit stream), P ix:{kind}:{addr} and P c:{id} (contacts; a lead for an unknown
--       sender), P tl:{id} (timeline), P lc:{id} / P cs:{camp} / P eng:replied:{camp}
--       (campaign attribution, contracts.md), P tgoff:{channel} (getUpdates offset), P stats.
--
-- 'peek'   3 provider, 4 provider id, 5 channel, 6 from
--          -> {dedupe value or '', contact id by reverse index or ''}
-- 'getoff' 3 channel -> the stored getUpdates offset ('0' when none)
-- 'offset' 3 channel, 4 offset: raise P tgoff:{channel} to offset (never lowers it) -> offset now
-- 'record' 3 now (ms), 4 provider, 5 provider id, 6 dedupe ttl (s), 7 channel, 8 from, 9 to,
--          10 text, 11 received_at (ms), 12 action (reply|opt_out|opt_in|help|link|taken),
--          13 id for a new contact, 14 timeline max, 15 audit stream max, 16 attribution window
--          for the timeline scan (ms), 17 create leads (1|0), 18 stop scope (categories|channel),
--          19 transport, 20 offset channel ('' = none), 21 offset (raised with the record),
--          22 phone (link), 23 stage name (taken), 24 the message an email reply names
--          (In-Reply-To/References; '' = none): it wins over lc:{id} when it went to the contact
--          -> {'ok'|'dup', contact id ('' = audit only), action, created (0|1), campaign or '',
--              message id or '', contact lang or ''}
local P, mode = ARGV[1], ARGV[2]

local function raise_offset(ch, off)
  if ch == '' then return end
  local k = P .. 'tgoff:' .. ch
  local cur = tonumber(redis.call('GET', k) or '0') or 0
  if tonumber(off) > cur then redis.call('SET', k, off) end
end

if mode == 'peek' then
  local d = redis.call('GET', P .. 'inb:' .. ARGV[3] .. ':' .. ARGV[4]) or ''
  local c = redis.call('GET', P .. 'ix:' .. ARGV[5] .. ':' .. ARGV[6]) or ''
  return {d, c}
elseif mode == 'getoff' then
  return redis.call('GET', P .. 'tgoff:' .. ARGV[3]) or '0'
elseif mode == 'offset' then
  raise_offset(ARGV[3], ARGV[4])
  return redis.call('GET', P .. 'tgoff:' .. ARGV[3]) or '0'
elseif mode ~= 'record' then
  return redis.error_reply('inbound: unknown mode')
end

local now, prov, pid = ARGV[3], ARGV[4], ARGV[5]
local ch, from, to, text, recv, action = ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12]
local tlmax, leads, scope = tonumber(ARGV[14]), ARGV[17] == '1', ARGV[18]
local phone, stage = ARGV[22], ARGV[23]
local MARKETING = {'promotional', 'survey', 'lottery', 'occasion'}

local function lang_of(cid)
  if cid == '' then return '' end
  return redis.call('HGET', P .. 'c:' .. cid, 'lang') or ''
end

local dk = P .. 'inb:' .. prov .. ':' .. pid
local prev = redis.call('GET', dk)
if prev then
  raise_offset(ARGV[20], ARGV[21])
  redis.call('HINCRBY', P .. 'stats', 'inbound_duplicate', 1)
  local sep = string.find(prev, ' ', 1, true)
  local cid = string.sub(prev, 1, sep - 1)
  if cid == '-' then cid = '' end
  return {'dup', cid, string.sub(prev, sep + 1), 0, '', '', lang_of(cid)}
end

local function new_contact(id, fields)
  redis.call('HSET', P .. 'c:' .. id, 'id', id, 'created', now, 'updated', now, 'v', 1,
             'lead', 1, unpack(fields))
  redis.call('ZADD', P .. 'contacts', 0, id)
end

local function owner(kind, addr)
  local o = redis.call('GET', P .. 'ix:' .. kind .. ':' .. addr)
  if o and redis.call('EXISTS', P .. 'c:' .. o) == 1 then return o end
  return nil
end

-- Give contact id the address addr of kind: its old address of that kind and the
-- address's previous owner let go (a shared number is Telegram-verified).
local function give(id, kind, addr)
  local ck = P .. 'c:' .. id
  local old = redis.call('HGET', ck, 'a:' .. kind)
  if old == addr then return end
  if old and redis.call('GET', P .. 'ix:' .. kind .. ':' .. old) == id then
    redis.call('DEL', P .. 'ix:' .. kind .. ':' .. old)
  end
  local o = redis.call('GET', P .. 'ix:' .. kind .. ':' .. addr)
  if o and o ~= id and redis.call('HGET', P .. 'c:' .. o, 'a:' .. kind) == addr then
    redis.call('HDEL', P .. 'c:' .. o, 'a:' .. kind)
    redis.call('HSET', P .. 'c:' .. o, 'updated', now)
    redis.call('HINCRBY', P .. 'c:' .. o, 'v', 1)
  end
  redis.call('SET', P .. 'ix:' .. kind .. ':' .. addr, id)
  redis.call('HSET', ck, 'a:' .. kind, addr, 'updated', now)
  redis.call('HINCRBY', ck, 'v', 1)
end

local cid, created = '', 0
if action == 'link' then
  local byphone, bychat = owner('sms', phone), owner(ch, from)
  if byphone then
    cid = byphone
    give(cid, ch, from)
  elseif bychat then
    cid = bychat
    give(cid, 'sms', phone)
  elseif leads then
    cid, created = ARGV[13], 1
    new_contact(cid, {'a:' .. ch, from, 'a:sms', phone})
    redis.call('SET', P .. 'ix:' .. ch .. ':' .. from, cid)
    redis.call('SET', P .. 'ix:sms:' .. phone, cid)
  end
else
  cid = owner(ch, from) or ''
  if cid == '' and leads then
    cid, created = ARGV[13], 1
    new_contact(cid, {'a:' .. ch, from})
    redis.call('SET', P .. 'ix:' .. ch .. ':' .. from, cid)
  end
end

-- the message an email reply names, when it was sent to this contact; else
-- the last campaign touch within its attribution window (contracts.md)
local camp, var, cmsg, named = '', '', '', false
local rto = ARGV[24] or ''
if cid ~= '' and rto ~= '' then
  local m = redis.call('HMGET', P .. 'm:' .. rto, 'contact', 'camp', 'var')
  if m[1] == cid then
    camp, var, cmsg, named = m[2] or '', m[3] or '', rto, true
  end
end
if cid ~= '' and not named then
  local lc = redis.call('HMGET', P .. 'lc:' .. cid, 'camp', 'var', 'msg', 'at', 'win')
  local at, win = tonumber(lc[4]), tonumber(lc[5])
  if lc[1] and at and win and tonumber(now) - at <= win then
    camp, var, cmsg = lc[1], lc[2] or '', lc[3] or ''
  end
end

local aid = redis.call('XADD', P .. 'inbound', 'MAXLEN', '~', ARGV[15], '*', 'channel', ch,
                       'from', from, 'to', to, 'text', text, 'received_at', recv,
                       'provider', prov, 'provider_id', pid, 'transport', ARGV[19],
                       'contact', cid, 'action', action, 'phone', phone, 'stage', stage)
local dcid = cid
if dcid == '' then dcid = '-' end
redis.call('SET', dk, dcid .. ' ' .. action, 'EX', ARGV[6])
redis.call('HINCRBY', P .. 'stats', 'inbound:' .. action, 1)
raise_offset(ARGV[20], ARGV[21])
if cid == '' then
  return {'ok', '', action, 0, '', '', ''}
end

local ck, tl = P .. 'c:' .. cid, P .. 'tl:' .. cid
local attributed = ''
if action == 'opt_out' or action == 'opt_in' then
  local pj = redis.call('HGET', ck, 'prefs')
  local p = {}
  if pj then p = cjson.decode(pj) end
  if type(p.consent) ~= 'table' then p.consent = {} end
  if type(p.categories) ~= 'table' then p.categories = {} end
  local what
  if action == 'opt_out' and scope == 'channel' then
    p.consent[ch] = false
    what = 'channel:' .. ch
  else
    for _, c in ipairs(MARKETING) do p.categories[c] = (action == 'opt_in') end
    what = 'categories'
    if action == 'opt_in' then p.consent[ch] = true; what = 'categories,channel:' .. ch end
  end
  if next(p.categories) == nil then p.categories = nil end
  if next(p.consent) == nil then p.consent = nil end
  redis.call('HSET', ck, 'prefs', cjson.encode(p), 'updated', now)
  redis.call('HINCRBY', ck, 'v', 1)
  if tlmax > 0 then
    local c = 'revoked'
    if action == 'opt_in' then c = 'granted' end
    redis.call('XADD', tl, 'MAXLEN', '~', tlmax, '*', 'type', 'consent', 'channel', ch,
               'consent', c, 'scope', what, 'reason', 'inbound keyword', 'text', text,
               'inbound', aid, 'camp', camp)
  end
elseif action == 'help' then
  if tlmax > 0 then
    redis.call('XADD', tl, 'MAXLEN', '~', tlmax, '*', 'type', 'help', 'channel', ch,
               'text', text, 'inbound', aid)
  end
elseif action == 'link' then
  if tlmax > 0 then
    redis.call('XADD', tl, 'MAXLEN', '~', tlmax, '*', 'type', 'link', 'channel', ch,
               'chat', from, 'phone', phone, 'inbound', aid)
  end
elseif action == 'taken' then
  -- the stage recorded what the text meant; the audit entry names it
  attributed = cmsg
else
  if camp ~= '' then
    local cs = P .. 'cs:' .. camp
    redis.call('HINCRBY', cs, 'replies', 1)
    if var ~= '' then redis.call('HINCRBY', cs, var .. ':replies', 1) end
    redis.call('SADD', P .. 'eng:replied:' .. camp, cid)
    attributed = cmsg
  end
  if attributed == '' and named then attributed = cmsg end
  if attributed == '' then
    -- no campaign touch: the most recent message sent to this contact within the window
    local oldest = tonumber(now) - tonumber(ARGV[16])
    for _, e in ipairs(redis.call('XREVRANGE', tl, '+', '-', 'COUNT', 20)) do
      local f = {}
      for i = 1, #e[2] - 1, 2 do f[e[2][i]] = e[2][i + 1] end
      local ms = tonumber(string.match(e[1], '^(%d+)'))
      if ms < oldest then break end
      if f.type == 'message' and (f.state == 'sent' or f.state == 'delivered') and f.m then
        attributed = f.m
        break
      end
    end
  end
  if tlmax > 0 then
    redis.call('XADD', tl, 'MAXLEN', '~', tlmax, '*', 'type', 'reply', 'channel', ch,
               'text', text, 'm', attributed, 'camp', camp, 'inbound', aid)
  end
end
return {'ok', cid, action, created, camp, attributed, lang_of(cid)}
