-- msg_settle: the one setter of a message's state after creation.
-- ARGV: 1 prefix, 2 id, 3 now, 4 from ('' = any), 5 to, 6 owner ('' = no check), 7 reason,
--       8 timeline max, 9 due (ms, for 'scheduled'), 10 group, 11.. field/value pairs.
--       The pair ('!revoke', channel) is not stored: it withdraws the contact's consent for
--       that channel (a chat bot blocked by the user, ...).
-- Returns {'ok', from} | {'conflict', current} | {'gone'} | {'bad_transition', current}.
local P, id, now, from, to = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local owner, reason = ARGV[6], ARGV[7]
-- must match the table in daemon/msg.c
local allowed = {
  scheduled = {ready = 1, cancelled = 1, expired = 1, suppressed = 1},
  ready = {sending = 1, cancelled = 1, expired = 1, suppressed = 1},
  sending = {sent = 1, scheduled = 1, failed = 1, suppressed = 1, expired = 1, sending = 1},
  sent = {delivered = 1, failed = 1},
}
local mk = P .. 'm:' .. id
local f = redis.call('HMGET', mk, 'state', 'owner', 'sid', 'lane', 'contact')
local st = f[1]
if not st then return {'gone'} end
if from ~= '' and st ~= from then return {'conflict', st} end
if owner ~= '' and f[2] ~= owner then return {'conflict', st} end
if not (allowed[st] and allowed[st][to]) then return {'bad_transition', st} end
redis.call('HSET', mk, 'state', to, 'updated', now)
local fields, revoke = {}, nil
for i = 11, #ARGV - 1, 2 do
  if ARGV[i] == '!revoke' then
    revoke = ARGV[i + 1]
  else
    fields[#fields + 1] = ARGV[i]; fields[#fields + 1] = ARGV[i + 1]
  end
end
if #fields > 0 then redis.call('HSET', mk, unpack(fields)) end
if reason ~= '' then redis.call('HSET', mk, 'last_error', reason) end
if st == 'sending' then
  if f[3] then
    local q = P .. 'q:' .. f[4]
    redis.call('XACK', q, ARGV[10], f[3]); redis.call('XDEL', q, f[3])
  end
  redis.call('HDEL', mk, 'lease', 'owner', 'sid')
end
if to == 'scheduled' then
  redis.call('HSET', mk, 'due', ARGV[9])
  redis.call('ZADD', P .. 'due', ARGV[9], id)
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
redis.call('RPUSH', P .. 'mh:' .. id, h .. '}')
redis.call('LTRIM', P .. 'mh:' .. id, -64, -1)
local tlmax = tonumber(ARGV[8])
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
if f[5] and tlmax > 0 and to ~= 'scheduled' and to ~= 'sending' then
  redis.call('XADD', P .. 'tl:' .. f[5], 'MAXLEN', '~', tlmax, '*', 'type', 'message',
             'm', id, 'state', to, 'reason', reason)
end
return {'ok', st}
