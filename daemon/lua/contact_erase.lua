-- contact_erase: the right of access (export) and the right to erasure for one contact
-- (daemon/api_privacy.c, docs/privacy.md).  ARGV[2] is the mode; ARGV[3] the contact id.
--
-- 'audit'  4 after (stream id, '' = from the start), 5 count, 6 erase (1|0)
--          One page of the raw inbound audit stream P inbound: the entries whose contact is
--          the id or whose from/phone is one of the contact's stored addresses.  With erase
--          they are XDELed with their dedupe keys P inb:{provider}:{provider id}.
--          -> {'ok', next ('' = the end was reached), matched, {id, fields}... (export only),
--              the last id looked at (after when the page was empty)} | {'not_found'}
-- 'erase'  4 after (the last id the audit pages looked at, '' = none), 5 now (ms)
--          -> {'ok', keys deleted, entries removed} | {'not_found'}
-- 'export' 4 most messages
--          -> {'ok', contact HGETALL, tags, timeline XRANGE, lc HGETALL, engagement {what, id}...,
--              messages {id, HGETALL, history}..., ledger XRANGE, lots ZRANGE WITHSCORES,
--              frequency caps {category, count}..., registry {entry, type, data}...,
--              truncated (0|1)} | {'not_found'}
--
-- What "everything" is: one step per resource below, in this order.  A resource whose keys
-- hold contact ids or addresses either adds a step here (a small function taking cid and the
-- contact hash, called by erase and export) or registers what to clean in the contact's
-- registry P cx:{cid} (a set) when it writes:
--   'k KEY'            DEL KEY                  (a key whose name or value names the contact)
--   's KEY[\tMEMBER]'  SREM KEY MEMBER          'z KEY[\tMEMBER]'  ZREM KEY MEMBER
--   'h KEY[\tFIELD]'   HDEL KEY FIELD           (MEMBER and FIELD default to cid)
--   'x KEY\tID'        XDEL KEY ID (a stream entry)
--   'l KEY\tVALUE'     LREM KEY 0 VALUE
-- KEY is without the prefix; a tab separates the argument.  Aggregate counters (P stats, P cs:{camp}) stay: they hold no id.
local P, mode, cid = ARGV[1], ARGV[2], ARGV[3]
local ck = P .. 'c:' .. cid
if redis.call('EXISTS', ck) == 0 then return {'not_found'} end

local CATEGORIES = {'transactional', 'promotional', 'survey', 'lottery', 'occasion'}
local CHANNELS = {'sms', 'email', 'chat'}
-- engagement sets P eng:{what}:{id}: the list of ids (a zset) and the kinds of set per id
local ENGAGEMENT = {{'camps', {'sent', 'replied', 'clicked'}}, {'raffles', {'entered'}}}

local function map(flat)
  local m = {}
  for i = 1, #flat - 1, 2 do m[flat[i]] = flat[i + 1] end
  return m
end

local contact = redis.call('HGETALL', ck)
local h = map(contact)
local addrs = {}
for k, v in pairs(h) do
  if string.sub(k, 1, 2) == 'a:' then addrs[v] = true end
end

-- the raw inbound audit stream ------------------------------------------------------------
local function inbound_match(f)
  for i = 1, #f - 1, 2 do
    local k, v = f[i], f[i + 1]
    if k == 'contact' and v == cid then return true end
    if (k == 'from' or k == 'phone') and addrs[v] then return true end
  end
  return false
end

local function inbound_drop(e)
  local f = map(e[2])
  redis.call('XDEL', P .. 'inbound', e[1])
  if f.provider and f.provider_id then
    local dk = P .. 'inb:' .. f.provider .. ':' .. f.provider_id
    local d = redis.call('GET', dk)
    if d and string.sub(d, 1, #cid + 1) == cid .. ' ' then redis.call('DEL', dk) end
  end
end

if mode == 'audit' then
  local after, count, erase = ARGV[4], tonumber(ARGV[5]), ARGV[6] == '1'
  local from = '-'
  if after ~= '' then from = '(' .. after end
  local page = redis.call('XRANGE', P .. 'inbound', from, '+', 'COUNT', count)
  local out, n = {}, 0
  for _, e in ipairs(page) do
    if inbound_match(e[2]) then
      n = n + 1
      if erase then inbound_drop(e) else out[#out + 1] = e end
    end
  end
  local nxt, last = '', after
  if #page > 0 then last = page[#page][1] end
  if #page == count then nxt = last end
  return {'ok', nxt, n, out, last}
end

-- messages -------------------------------------------------------------------------------
-- P cm:{cid} (msg_create.lua), the timeline's message entries (messages made elsewhere,
-- e.g. camp_pump.lua) and the last campaign touch.  Only messages whose contact is cid.
local function message_ids()
  local ids, seen = {}, {}
  local function add(id)
    if id and id ~= '' and not seen[id] then
      seen[id] = true
      ids[#ids + 1] = id
    end
  end
  for _, id in ipairs(redis.call('ZRANGE', P .. 'cm:' .. cid, 0, -1)) do add(id) end
  for _, e in ipairs(redis.call('XRANGE', P .. 'tl:' .. cid, '-', '+')) do
    local f = map(e[2])
    add(f.m)
  end
  add(redis.call('HGET', P .. 'lc:' .. cid, 'msg'))
  local mine = {}
  for _, id in ipairs(ids) do
    if redis.call('HGET', P .. 'm:' .. id, 'contact') == cid then mine[#mine + 1] = id end
  end
  return mine
end

local function camp_ids()
  return redis.call('ZRANGE', P .. 'camps', 0, -1)
end

-- the registry P cx:{cid} ------------------------------------------------------------------
local function reg_parse(e)
  local op, rest = string.sub(e, 1, 1), string.sub(e, 3)
  local tab = string.find(rest, '\t', 1, true)
  if tab then return op, string.sub(rest, 1, tab - 1), string.sub(rest, tab + 1) end
  return op, rest, nil
end

local function dump(k)
  local t = redis.call('TYPE', k)['ok']
  if t == 'string' then return t, redis.call('GET', k) end
  if t == 'hash' then return t, redis.call('HGETALL', k) end
  if t == 'set' then return t, redis.call('SMEMBERS', k) end
  if t == 'zset' then return t, redis.call('ZRANGE', k, 0, -1, 'WITHSCORES') end
  if t == 'list' then return t, redis.call('LRANGE', k, 0, -1) end
  if t == 'stream' then return t, redis.call('XRANGE', k, '-', '+') end
  return t, ''
end

if mode == 'export' then
  local most = tonumber(ARGV[4])
  local tags = redis.call('SMEMBERS', P .. 'ct:' .. cid)
  local tl = redis.call('XRANGE', P .. 'tl:' .. cid, '-', '+')
  local lc = redis.call('HGETALL', P .. 'lc:' .. cid)
  local eng = {}
  for _, g in ipairs(ENGAGEMENT) do
    for _, id in ipairs(redis.call('ZRANGE', P .. g[1], 0, -1)) do
      for _, what in ipairs(g[2]) do
        if redis.call('SISMEMBER', P .. 'eng:' .. what .. ':' .. id, cid) == 1 then
          eng[#eng + 1] = {what, id}
        end
      end
    end
  end
  local msgs, truncated = {}, 0
  for _, id in ipairs(message_ids()) do
    if #msgs >= most then truncated = 1; break end
    msgs[#msgs + 1] = {id, redis.call('HGETALL', P .. 'm:' .. id),
                       redis.call('LRANGE', P .. 'mh:' .. id, 0, -1)}
  end
  local ledger = redis.call('XRANGE', P .. 'pl:' .. cid, '-', '+')
  local lots = redis.call('ZRANGE', P .. 'pt:' .. cid, 0, -1, 'WITHSCORES')
  local caps = {}
  for _, cat in ipairs(CATEGORIES) do
    local n = redis.call('ZCARD', P .. 'fc:' .. cid .. ':' .. cat)
    if n > 0 then caps[#caps + 1] = {cat, n} end
  end
  local reg = {}
  for _, e in ipairs(redis.call('SMEMBERS', P .. 'cx:' .. cid)) do
    local op, key, arg = reg_parse(e)
    local k = P .. key
    if op == 'k' and redis.call('EXISTS', k) == 1 then
      local t, d = dump(k)
      reg[#reg + 1] = {e, t, d}
    elseif (op == 's' and redis.call('SISMEMBER', k, arg or cid) == 1) or
           (op == 'z' and redis.call('ZSCORE', k, arg or cid)) then
      reg[#reg + 1] = {e, 'member', arg or cid}
    elseif op == 'h' or op == 'f' then
      local v = redis.call('HGET', k, arg or cid)
      if v then reg[#reg + 1] = {e, 'field', v} end
    elseif op == 'x' and arg then
      local x = redis.call('XRANGE', k, arg, arg)
      if #x > 0 then reg[#reg + 1] = {e, 'entry', x[1][2]} end
    end
  end
  return {'ok', contact, tags, tl, lc, eng, msgs, ledger, lots, caps, reg, truncated}
end

if mode ~= 'erase' then return redis.error_reply('contact_erase: unknown mode') end

local after, now = ARGV[4], ARGV[5]
local keys, entries = 0, 0
local function del(...)
  keys = keys + redis.call('DEL', ...)
end

-- inbound entries recorded after the audit pages (a reply that raced the erasure)
do
  local from = '-'
  if after ~= '' then from = '(' .. after end
  for _, e in ipairs(redis.call('XRANGE', P .. 'inbound', from, '+', 'COUNT', 10000)) do
    if inbound_match(e[2]) then
      inbound_drop(e)
      entries = entries + 1
    end
  end
end

-- the desk's inbox: replies not routed to a team yet (lua/desk_ticket.lua)
for _, e in ipairs(redis.call('XRANGE', P .. 'deskin', '-', '+', 'COUNT', 10000)) do
  if inbound_match(e[2]) then
    redis.call('XDEL', P .. 'deskin', e[1])
    entries = entries + 1
  end
end

-- messages, their history, and where the scheduler may still hold their ids
for _, id in ipairs(message_ids()) do
  local camp = redis.call('HGET', P .. 'm:' .. id, 'camp')
  del(P .. 'm:' .. id, P .. 'mh:' .. id)
  redis.call('ZREM', P .. 'due', id)
  for _, ch in ipairs(CHANNELS) do redis.call('ZREM', P .. 'await:' .. ch, id) end
  if camp then redis.call('SREM', P .. 'cpk:' .. camp, id) end
end

-- campaigns: engagement sets, recipients not yet made messages ("cid arm"), last touch
for _, g in ipairs(ENGAGEMENT) do
  for _, id in ipairs(redis.call('ZRANGE', P .. g[1], 0, -1)) do
    for _, what in ipairs(g[2]) do
      entries = entries + redis.call('SREM', P .. 'eng:' .. what .. ':' .. id, cid)
    end
  end
end
for _, camp in ipairs(camp_ids()) do
  local cq = P .. 'cq:' .. camp
  if redis.call('EXISTS', cq) == 1 then
    -- the arms are the "{arm}:targeted" counters camp_fan.lua keeps
    for _, f in ipairs(redis.call('HKEYS', P .. 'cs:' .. camp)) do
      local arm = string.match(f, '^(.+):targeted$')
      if arm then entries = entries + redis.call('LREM', cq, 0, cid .. ' ' .. arm) end
    end
  end
end

-- walks over the contacts resume "after cursor": a cursor that is cid becomes the id before
-- it (the same ids are left to walk once cid is gone); '' when there is none
local prev = redis.call('ZRANGE', P .. 'contacts', '(' .. cid, '-', 'BYLEX', 'REV', 'LIMIT', 0, 1)
prev = prev[1] or ''
local function uncursor(k, field)
  if redis.call('HGET', k, field) == cid then redis.call('HSET', k, field, prev) end
end
for _, camp in ipairs(camp_ids()) do uncursor(P .. 'cp:' .. camp, 'fan_cursor') end
for _, occ in ipairs(redis.call('ZRANGE', P .. 'occasions', 0, -1)) do
  uncursor(P .. 'occ:run:' .. occ, 'cursor')
  uncursor(P .. 'occ:live:' .. occ, 'cursor')
end

-- frequency caps
for _, cat in ipairs(CATEGORIES) do del(P .. 'fc:' .. cid .. ':' .. cat) end

-- points and referrals: the referral code, and the referrer's entries that name cid
if h.ref and redis.call('GET', P .. 'ref:' .. h.ref) == cid then del(P .. 'ref:' .. h.ref) end
if h.referred_by then
  for _, s in ipairs({'tl:', 'pl:'}) do
    local k = P .. s .. h.referred_by
    for _, e in ipairs(redis.call('XRANGE', k, '-', '+')) do
      for i = 2, #e[2], 2 do
        if e[2][i] == cid then
          entries = entries + redis.call('XDEL', k, e[1])
          break
        end
      end
    end
  end
end

-- the registry
for _, e in ipairs(redis.call('SMEMBERS', P .. 'cx:' .. cid)) do
  local op, key, arg = reg_parse(e)
  local k = P .. key
  if op == 'k' then del(k)
  elseif op == 's' then entries = entries + redis.call('SREM', k, arg or cid)
  elseif op == 'z' then entries = entries + redis.call('ZREM', k, arg or cid)
  elseif op == 'h' or (op == 'f' and arg) then
    entries = entries + redis.call('HDEL', k, arg or cid)
  elseif op == 'x' and arg then entries = entries + redis.call('XDEL', k, arg)
  elseif op == 'l' and arg then entries = entries + redis.call('LREM', k, 0, arg)
  end
end

-- the contact: reverse indexes, tags, timeline, campaign touch, points, indexes of its own
for k, v in pairs(h) do
  if string.sub(k, 1, 2) == 'a:' then
    local ix = P .. 'ix:' .. string.sub(k, 3) .. ':' .. v
    if redis.call('GET', ix) == cid then del(ix) end
  end
end
for _, t in ipairs(redis.call('SMEMBERS', P .. 'ct:' .. cid)) do
  redis.call('SREM', P .. 'tag:' .. t, cid)
end
del(ck, P .. 'ct:' .. cid, P .. 'tl:' .. cid, P .. 'lc:' .. cid, P .. 'pl:' .. cid,
    P .. 'pt:' .. cid, P .. 'cm:' .. cid, P .. 'cx:' .. cid)
redis.call('ZREM', P .. 'contacts', cid)
redis.call('HINCRBY', P .. 'stats', 'contacts_erased', 1)
return {'ok', keys, entries}
