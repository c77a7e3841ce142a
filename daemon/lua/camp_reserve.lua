-- camp_reserve: charge one rendered campaign message against the budget before it is sent.
-- ARGV: 1 prefix, 2 campaign id, 3 message id, 4 owner, 5 now, 6 cost (micros), 7 arm,
--       then link records for links.c (count-prefixed; may be '0').
-- When the cost would take the campaign past its budget, the campaign pauses itself with
-- reason 'budget_exhausted' and the message is parked (the dispatcher settles it).
-- Returns {'ok'} | {'over'} | {'state', current} | {'conflict'}.
local P, id, mid, owner, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local cost = tonumber(ARGV[6])
local ck, cs = P .. 'cp:' .. id, P .. 'cs:' .. id
local f = redis.call('HMGET', ck, 'state', 'budget_c')
if f[1] ~= 'running' then return {'state', f[1] or ''} end
if redis.call('HGET', P .. 'm:' .. mid, 'owner') ~= owner then return {'conflict'} end
local budget = tonumber(f[2] or '0') or 0
local spent = tonumber(redis.call('HGET', cs, 'cost_micros') or '0')
if budget > 0 and spent + cost > budget * 10000 then
  redis.call('HSET', ck, 'state', 'paused', 'updated', now, 'reason', 'budget_exhausted')
  redis.call('SREM', P .. 'camps:active', id)
  redis.call('RPUSH', P .. 'cph:' .. id, cjson.encode({at = tonumber(now), state = 'paused',
             from = 'running', verb = 'self_pause', reason = 'budget_exhausted'}))
  return {'over'}
end
if cost > 0 then
  redis.call('HINCRBY', cs, 'cost_micros', cost)
  redis.call('HINCRBY', cs, ARGV[7] .. ':cost_micros', cost)
  redis.call('HSET', P .. 'm:' .. mid, 'rsv', cost)
end
return {'ok'}
