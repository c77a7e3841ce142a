-- unsubscribe: the recipient of a message opts out (List-Unsubscribe one-click, RFC 8058).
-- The message's category is switched off for the contact; for a transactional message (which
-- cannot be refused by category) the consent for the message's channel is withdrawn instead.
-- ARGV: 1 prefix, 2 message id, 3 now, 4 timeline max.
-- Returns {'ok', what} ('category:<c>' or 'channel:<ch>') | {'gone'}.
local P, id, now = ARGV[1], ARGV[2], ARGV[3]
local f = redis.call('HMGET', P .. 'm:' .. id, 'contact', 'category', 'sent_channel', 'channel')
if not f[1] or redis.call('EXISTS', P .. 'c:' .. f[1]) == 0 then return {'gone'} end
local ck = P .. 'c:' .. f[1]
local pj = redis.call('HGET', ck, 'prefs')
local p = {}
if pj then p = cjson.decode(pj) end
local what
local cat = f[2] or 'transactional'
if cat ~= 'transactional' then
  if type(p.categories) ~= 'table' then p.categories = {} end
  p.categories[cat] = false
  what = 'category:' .. cat
else
  local ch = f[3] or f[4] or 'email'
  if ch == 'preferred' then ch = 'email' end
  if type(p.consent) ~= 'table' then p.consent = {} end
  p.consent[ch] = false
  what = 'channel:' .. ch
end
redis.call('HSET', ck, 'prefs', cjson.encode(p), 'updated', now)
redis.call('HINCRBY', P .. 'stats', 'unsubscribed', 1)
local tlmax = tonumber(ARGV[4])
if tlmax > 0 then
  redis.call('XADD', P .. 'tl:' .. f[1], 'MAXLEN', '~', tlmax, '*', 'type', 'consent',
             'consent', 'revoked', 'scope', what, 'reason', 'unsubscribe link', 'm', id)
end
return {'ok', what}
