-- inbound: record one inbound message and apply what the router decided, atomically.
-- Keys: P inb:{provider}:{provider id} (dedupe, TTL), P inbound (capped audit stream),
--       P ix:{channel}:{from}, P c:{id} (a lead is created for an unknown sender),
--       P tl:{id} (timeline), P stats.
-- ARGV: 1 prefix, 2 now (ms), 3 provider, 4 provider id, 5 dedupe ttl (s), 6 channel,
--       7 from, 8 to, 9 text, 10 received_at (ms), 11 action (reply|opt_out|opt_in|help),
--       12 id for a new contact, 13 timeline max, 14 audit stream max,
--       15 attribution window (ms).
-- Returns {'dup', contact id, action} | {'ok', contact id, action, created (0|1),
--          attributed message id or ''}.
local P, now, prov, pid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ch, from, to, text, recv, action = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10], ARGV[11]
local tlmax = tonumber(ARGV[13])
local dk = P .. 'inb:' .. prov .. ':' .. pid
local prev = redis.call('GET', dk)
if prev then
  redis.call('HINCRBY', P .. 'stats', 'inbound_duplicate', 1)
  local sep = string.find(prev, ' ', 1, true)
  return {'dup', string.sub(prev, 1, sep - 1), string.sub(prev, sep + 1)}
end
local ixk = P .. 'ix:' .. ch .. ':' .. from
local cid = redis.call('GET', ixk)
local created = 0
if not cid or redis.call('EXISTS', P .. 'c:' .. cid) == 0 then
  cid = ARGV[12]
  created = 1
  redis.call('HSET', P .. 'c:' .. cid, 'id', cid, 'a:' .. ch, from, 'created', now,
             'updated', now, 'v', 1, 'lead', 1)
  redis.call('SET', ixk, cid)
  redis.call('ZADD', P .. 'contacts', 0, cid)
end
local ck = P .. 'c:' .. cid
local aid = redis.call('XADD', P .. 'inbound', 'MAXLEN', '~', ARGV[14], '*', 'channel', ch,
                       'from', from, 'to', to, 'text', text, 'received_at', recv,
                       'provider', prov, 'provider_id', pid, 'contact', cid, 'action', action)
redis.call('SET', dk, cid .. ' ' .. action, 'EX', ARGV[5])
redis.call('HINCRBY', P .. 'stats', 'inbound:' .. action, 1)
local tl = P .. 'tl:' .. cid
local attributed = ''
if action == 'opt_out' or action == 'opt_in' then
  local pj = redis.call('HGET', ck, 'prefs')
  local p = {}
  if pj then p = cjson.decode(pj) end
  if type(p.consent) ~= 'table' then p.consent = {} end
  p.consent[ch] = (action == 'opt_in')
  redis.call('HSET', ck, 'prefs', cjson.encode(p), 'updated', now)
  if tlmax > 0 then
    local c = 'revoked'
    if action == 'opt_in' then c = 'granted' end
    redis.call('XADD', tl, 'MAXLEN', '~', tlmax, '*', 'type', 'consent', 'channel', ch,
               'consent', c, 'reason', 'inbound keyword', 'text', text, 'inbound', aid)
  end
elseif action == 'help' then
  if tlmax > 0 then
    redis.call('XADD', tl, 'MAXLEN', '~', tlmax, '*', 'type', 'help', 'channel', ch,
               'text', text, 'inbound', aid)
  end
else
  -- the most recent message sent to this contact within the window
  local oldest = tonumber(now) - tonumber(ARGV[15])
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
  if tlmax > 0 then
    redis.call('XADD', tl, 'MAXLEN', '~', tlmax, '*', 'type', 'reply', 'channel', ch,
               'text', text, 'm', attributed, 'inbound', aid)
  end
end
return {'ok', cid, action, created, attributed}
