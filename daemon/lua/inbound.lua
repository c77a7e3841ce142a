-- inbound: record inbound messages and apply what the router decided, atomically
-- (daemon/inbound_route.c; docs/inbound.md).  ARGV[2] is the mode.
-- Keys: P inb:{provider}:{provider id} (dedupe, TTL, "contact action"), P inbound (capped
--       audit stream), P ix:{kind}:{addr} and P c:{id} (contacts; a lead for an unknown
--       sender), P tl:{id} (timeline), P lc:{id} / P cs:{camp} / P eng:replied:{camp}
--       (campaign attribution, contracts.md; lc:{id} lm/lmat: the last message sent to the
--       contact, lua/msg_settle.lua), P tgoff:{channel} (getUpdates offset), P stats; read
--       only: P sv:{id}, P svi:{provider}:{provider id}, P raffles:open (the stages' "may take").
--       The complaints desk (docs/desk.md): a reply from a contact whose current ticket
--       (P tkc:{id}) is open or assigned joins it here (P tk:{ticket}, P tkm:{ticket},
--       lib/desk.lua); any other reply goes to the desk's inbox P deskin (lua/desk_ticket.lua
--       routes it to a team), in this same script, so none is lost.
--
-- 'getoff' 3 channel -> the stored getUpdates offset ('0' when none)
-- 'offset' 3 channel, 4 offset: raise P tgoff:{channel} to offset (never lowers it) -> offset now
-- 'batch'  records a batch of messages, each on its own (one item's outcome never depends on
--          the others but through the store, in order):
--          3 now (ms), 4 dedupe ttl (s), 5 timeline max, 6 audit stream max, 7 attribution
--          window for a reply without a campaign touch (ms), 8 create leads (1|0), 9 stop scope
--          (categories|channel), then items of 16 values:
--          provider, provider id, channel, from, to, text, received_at (ms), action
--          (reply|opt_out|opt_in|help|link|taken), id for a new contact, transport, offset
--          channel ('' = none), offset (raised with the record), phone (link), stage name
--          (taken), the message an email reply names (In-Reply-To/References, '' = none: it
--          wins over lc:{id} when it went to the contact), ask (1: the router's stages have not
--          seen this reply; when one may take it -- the contact has an open survey
--          conversation, the message was answered by a survey before, a raffle is open -- the
--          item answers 'stage' and writes nothing)
--          -> per item {'ok'|'dup'|'stage'|'err', contact id ('' = audit only / unknown) or
--              the error (err), action,
--              created (0|1), campaign or '', message id or '', contact lang or '', the
--              ticket the reply joined or ''}
-- use: desk
local P, mode = ARGV[1], ARGV[2]
local call = redis.call

local function raise_offset(ch, off)
  if ch == '' then return end
  local k = P .. 'tgoff:' .. ch
  local cur = tonumber(call('GET', k) or '0') or 0
  if tonumber(off) > cur then call('SET', k, off) end
end

if mode == 'getoff' then
  return call('GET', P .. 'tgoff:' .. ARGV[3]) or '0'
elseif mode == 'offset' then
  raise_offset(ARGV[3], ARGV[4])
  return call('GET', P .. 'tgoff:' .. ARGV[3]) or '0'
elseif mode ~= 'batch' then
  return redis.error_reply('inbound: unknown mode')
end

local now, dttl, tlmaxs, amax = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local tlmax = tonumber(tlmaxs)
local win, leads, scope = tonumber(ARGV[7]), ARGV[8] == '1', ARGV[9]
local nnow = tonumber(now)
local MARKETING = {'promotional', 'survey', 'lottery', 'occasion'}
local ITEM = 16
local raffles_open = nil
local counts = {} -- P stats fields, written once per batch
local claimed = nil -- the dedupe key the current item set
local counted = {} -- the current item's counters, added to counts when it succeeds

local function count(field)
  counted[#counted + 1] = field
end

local function new_contact(id, fields)
  call('HSET', P .. 'c:' .. id, 'id', id, 'created', now, 'updated', now, 'v', '1', 'lead',
       '1', unpack(fields))
  call('ZADD', P .. 'contacts', '0', id)
end

-- The live contact an address belongs to, and its language.
local function owner(kind, addr)
  local o = call('GET', P .. 'ix:' .. kind .. ':' .. addr)
  if not o then return nil, '' end
  local h = call('HMGET', P .. 'c:' .. o, 'id', 'lang')
  if not h[1] then return nil, '' end
  return o, h[2] or ''
end

-- Give contact id the address addr of kind: its old address of that kind and the
-- address's previous owner let go (a shared number is Telegram-verified).
local function give(id, kind, addr)
  local ck = P .. 'c:' .. id
  local old = call('HGET', ck, 'a:' .. kind)
  if old == addr then return end
  if old and call('GET', P .. 'ix:' .. kind .. ':' .. old) == id then
    call('DEL', P .. 'ix:' .. kind .. ':' .. old)
  end
  local o = call('GET', P .. 'ix:' .. kind .. ':' .. addr)
  if o and o ~= id and call('HGET', P .. 'c:' .. o, 'a:' .. kind) == addr then
    call('HDEL', P .. 'c:' .. o, 'a:' .. kind)
    call('HSET', P .. 'c:' .. o, 'updated', now)
    call('HINCRBY', P .. 'c:' .. o, 'v', 1)
  end
  call('SET', P .. 'ix:' .. kind .. ':' .. addr, id)
  call('HSET', ck, 'a:' .. kind, addr, 'updated', now)
  call('HINCRBY', ck, 'v', 1)
end

-- May a router stage take this reply?  (survey_run.c, club/raffle.c)
local function stage_may(cid, prov, pid)
  -- the contact's open conversation, or a survey took this very message before (a retry)
  if call('EXISTS', P .. 'sv:' .. cid, P .. 'svi:' .. prov .. ':' .. pid) > 0 then return true end
  if raffles_open == nil then raffles_open = call('SCARD', P .. 'raffles:open') end
  return raffles_open > 0
end

local function record(b)
  local prov, pid, ch, from, to, text = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3],
                                        ARGV[b + 4], ARGV[b + 5]
  local recv, action, newid, transport = ARGV[b + 6], ARGV[b + 7], ARGV[b + 8], ARGV[b + 9]
  local och, off, phone, stage, rto = ARGV[b + 10], ARGV[b + 11], ARGV[b + 12], ARGV[b + 13],
                                      ARGV[b + 14]
  local ask = ARGV[b + 15] == '1' and action == 'reply'

  -- a repeat answers the first answer ("contact action") and changes nothing
  local dk = P .. 'inb:' .. prov .. ':' .. pid
  local function dup(prev)
    raise_offset(och, off)
    count('inbound_duplicate')
    local sep = string.find(prev, ' ', 1, true)
    local cid = string.sub(prev, 1, sep - 1)
    local lang = ''
    if cid == '-' then
      cid = ''
    else
      lang = call('HGET', P .. 'c:' .. cid, 'lang') or ''
    end
    return {'dup', cid, string.sub(prev, sep + 1), 0, '', '', lang, ''}
  end

  local cid, lang, created = '', '', 0
  if action == 'link' then
    local prev = call('GET', dk)
    if prev then return dup(prev) end
    local byphone, bychat = owner('sms', phone), owner(ch, from)
    if byphone then
      cid = byphone
      give(cid, ch, from)
    elseif bychat then
      cid = bychat
      give(cid, 'sms', phone)
    elseif leads then
      cid, created = newid, 1
      new_contact(cid, {'a:' .. ch, from, 'a:sms', phone})
      call('SET', P .. 'ix:' .. ch .. ':' .. from, cid)
      call('SET', P .. 'ix:sms:' .. phone, cid)
    end
    if cid ~= '' and created == 0 then lang = call('HGET', P .. 'c:' .. cid, 'lang') or '' end
  else
    local o, l = owner(ch, from)
    -- the dedupe key, claimed with the contact this message gets: one call, and a repeat
    -- reads the first answer back
    local mine = o or (leads and newid) or '-'
    local prev = call('SET', dk, mine .. ' ' .. action, 'NX', 'GET', 'EX', dttl)
    if prev then return dup(prev) end
    claimed = dk
    if ask and stage_may(o or '', prov, pid) then
      call('DEL', dk) -- the stages first; the record comes back told not to ask
      return {'stage', o or '', action, 0, '', '', l, ''}
    end
    if o then
      cid, lang = o, l
    elseif leads then
      cid, created = newid, 1
      new_contact(cid, {'a:' .. ch, from})
      call('SET', P .. 'ix:' .. ch .. ':' .. from, cid)
    end
  end

  -- the message an email reply names, when it was sent to this contact; else the last
  -- campaign touch within its window (contracts.md); a reply with neither answers the last
  -- message sent to the contact within the attribution window
  local camp, var, cmsg, named, lm = '', '', '', false, ''
  if cid ~= '' and rto ~= '' then
    local m = call('HMGET', P .. 'm:' .. rto, 'contact', 'camp', 'var')
    if m[1] == cid then
      camp, var, cmsg, named = m[2] or '', m[3] or '', rto, true
    end
  end
  if cid ~= '' and created == 0 then
    local lc = call('HMGET', P .. 'lc:' .. cid, 'camp', 'var', 'msg', 'at', 'win', 'lm', 'lmat')
    if not named then
      local at, w = tonumber(lc[4]), tonumber(lc[5])
      if lc[1] and at and w and nnow - at <= w then
        camp, var, cmsg = lc[1], lc[2] or '', lc[3] or ''
      end
    end
    local lmat = tonumber(lc[7])
    if lc[6] and lmat and nnow - lmat <= win then lm = lc[6] end
  end

  local aid = call('XADD', P .. 'inbound', 'MAXLEN', '~', amax, '*', 'channel', ch, 'from', from,
                   'to', to, 'text', text, 'received_at', recv, 'provider', prov, 'provider_id',
                   pid, 'transport', transport, 'contact', cid, 'action', action, 'phone', phone,
                   'stage', stage, 'camp', camp)
  if action == 'link' then
    local dcid = cid
    if dcid == '' then dcid = '-' end
    call('SET', dk, dcid .. ' ' .. action, 'EX', dttl)
    claimed = dk
  end
  count('inbound:' .. action)
  raise_offset(och, off)

  -- the desk: a reply joins the contact's open or assigned ticket, else waits in the inbox
  local ticket = ''
  if action == 'reply' then
    local tk = cid ~= '' and call('GET', P .. 'tkc:' .. cid)
    local h = tk and call('HMGET', P .. 'tk:' .. tk, 'state', 'n')
    if h and (h[1] == 'open' or h[1] == 'assigned') then
      desk_append(P, tk, h[2], now, nnow, ch, from, to, text, aid, prov, pid)
      count('desk:appended')
      ticket = tk
    else
      call('XADD', P .. 'deskin', '*', 'aid', aid, 'channel', ch, 'from', from, 'to', to, 'text',
           text, 'provider', prov, 'provider_id', pid, 'contact', cid, 'camp', camp)
    end
  end
  if cid == '' then
    return {'ok', '', action, 0, '', '', '', ''}
  end

  local ck, tl = P .. 'c:' .. cid, P .. 'tl:' .. cid
  local attributed = ''
  if action == 'opt_out' or action == 'opt_in' then
    local pj = call('HGET', ck, 'prefs')
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
    call('HSET', ck, 'prefs', cjson.encode(p), 'updated', now)
    call('HINCRBY', ck, 'v', 1)
    if tlmax > 0 then
      local c = 'revoked'
      if action == 'opt_in' then c = 'granted' end
      call('XADD', tl, 'MAXLEN', '~', tlmaxs, '*', 'type', 'consent', 'channel', ch, 'consent', c,
           'scope', what, 'reason', 'inbound keyword', 'text', text, 'inbound', aid, 'camp', camp)
    end
  elseif action == 'help' then
    if tlmax > 0 then
      call('XADD', tl, 'MAXLEN', '~', tlmaxs, '*', 'type', 'help', 'channel', ch, 'text', text,
           'inbound', aid)
    end
  elseif action == 'link' then
    if tlmax > 0 then
      call('XADD', tl, 'MAXLEN', '~', tlmaxs, '*', 'type', 'link', 'channel', ch, 'chat', from,
           'phone', phone, 'inbound', aid)
    end
  elseif action == 'taken' then
    -- the stage recorded what the text meant; the audit entry names it
    attributed = cmsg
  else
    if camp ~= '' then
      local cs = P .. 'cs:' .. camp
      call('HINCRBY', cs, 'replies', 1)
      if var ~= '' then call('HINCRBY', cs, var .. ':replies', 1) end
      call('SADD', P .. 'eng:replied:' .. camp, cid)
      attributed = cmsg
    end
    if attributed == '' and named then attributed = cmsg end
    if attributed == '' then attributed = lm end
    if tlmax > 0 then
      call('XADD', tl, 'MAXLEN', '~', tlmaxs, '*', 'type', 'reply', 'channel', ch, 'text', text,
           'm', attributed, 'camp', camp, 'inbound', aid)
    end
  end
  return {'ok', cid, action, created, camp, attributed, lang, ticket}
end

-- An item that fails (a Lua error: a contact's unreadable prefs, a command refused) answers
-- 'err' alone, and lets its dedupe key go so the provider's retry is handled again (what it
-- wrote before the error stays: a retry may add a second audit or timeline entry, never lose
-- the message); the others of the batch are recorded as if it had not been there.
local out = {}
for b = 10, #ARGV - ITEM + 1, ITEM do
  claimed, counted = nil, {}
  local ok, res = pcall(record, b)
  if ok then
    out[#out + 1] = res
    for _, field in ipairs(counted) do counts[field] = (counts[field] or 0) + 1 end
  else
    if claimed then call('DEL', claimed) end
    out[#out + 1] = {'err', tostring(res), '', 0, '', '', '', ''}
  end
end
for field, n in pairs(counts) do call('HINCRBY', P .. 'stats', field, n) end
return out
