-- msg_report: a delivery report from a provider for one message.
-- ARGV: 1 prefix, 2 id, 3 now, 4 outcome (delivered|undelivered|progress), 5 provider code,
--       6 provider name, 7 timeline max, 8 the provider's (SMSC's) message id or ''.
-- Duplicate and out-of-order reports are harmless: the first final report wins; a report
-- that arrives before our own 'sent' is written is kept and applied by msg_settle.
-- Returns {'ok', state} | {'dup', state} | {'early'} | {'gone'}.
local P, id, now, outcome, code, prov = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local mk = P .. 'm:' .. id
local f = redis.call('HMGET', mk, 'state', 'contact', 'sent_channel', 'camp', 'var')
local st = f[1]
if not st then return {'gone'} end
if ARGV[8] and ARGV[8] ~= '' then redis.call('HSET', mk, 'smsc_id', ARGV[8]) end
local h = '{"at":' .. now .. ',"report":' .. cjson.encode(outcome) .. ',"code":' ..
          cjson.encode(code) .. ',"provider":' .. cjson.encode(prov) .. '}'
if outcome == 'progress' then
  if redis.call('RPUSH', P .. 'mh:' .. id, h) > 64 then
    redis.call('LTRIM', P .. 'mh:' .. id, -64, -1)
  end
  return {'ok', st}
end
if st == 'sending' or st == 'ready' or st == 'scheduled' then
  redis.call('HSET', mk, 'dlr_early', outcome, 'dlr_code', code)
  return {'early'}
end
if f[3] then redis.call('ZREM', P .. 'await:' .. f[3], id) end
if st ~= 'sent' then return {'dup', st} end
local to = 'delivered'
if outcome == 'undelivered' then to = 'failed' end
redis.call('HSET', mk, 'state', to, 'updated', now, 'dlr_code', code, 'reported_at', now)
if to == 'failed' then
  local reason = 'undelivered: ' .. prov .. ' ' .. code
  redis.call('HSET', mk, 'last_error', reason)
  redis.call('XADD', P .. 'dlq', '*', 'm', id, 'reason', reason, 'at', now)
  redis.call('HINCRBY', P .. 'stats', 'undelivered', 1)
else
  redis.call('HINCRBY', P .. 'stats', 'delivered', 1)
end
redis.call('RPUSH', P .. 'mh:' .. id, h)
if f[4] then
  -- campaign counters: delivered or undelivered, overall and per arm
  local k = 'delivered'
  if to == 'failed' then k = 'undelivered' end
  redis.call('HINCRBY', P .. 'cs:' .. f[4], k, 1)
  redis.call('HINCRBY', P .. 'cs:' .. f[4], (f[5] or 'A') .. ':' .. k, 1)
end
local tlmax = tonumber(ARGV[7])
if f[2] and tlmax > 0 then
  redis.call('XADD', P .. 'tl:' .. f[2], 'MAXLEN', '~', tlmax, '*', 'type', 'message', 'm', id,
             'state', to, 'reason', code)
end
return {'ok', to}
