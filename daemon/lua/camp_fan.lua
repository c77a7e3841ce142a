-- camp_fan: append one batch of the audience to a running campaign's recipient list.
-- ARGV: 1 prefix, 2 id, 3 now, 4 expected cursor, 5 new cursor, 6 done (0|1), then pairs
--       (contact id, arm) where arm is a variant name or 'control'.
-- The cursor moves in the same script as the append, so a fan-out resumed after a crash
-- continues exactly after the last batch that landed: nobody twice, nobody skipped.
-- Control-group members get nothing queued; their last campaign touch (lc:) is set so that
-- their purchases count for the control arm.
-- Returns {'ok', queued} | {'moved', cursor} | {'state', current}.
local P, id, now = ARGV[1], ARGV[2], ARGV[3]
local ck = P .. 'cp:' .. id
local f = redis.call('HMGET', ck, 'state', 'fan_cursor', 'fan_done', 'win')
if f[1] ~= 'running' and f[1] ~= 'paused' then return {'state', f[1] or ''} end
if f[3] == '1' or (f[2] or '') ~= ARGV[4] then return {'moved', f[2] or ''} end
local cs, cq = P .. 'cs:' .. id, P .. 'cq:' .. id
local q, n, per = {}, 0, {}
for i = 7, #ARGV - 1, 2 do
  local cid, arm = ARGV[i], ARGV[i + 1]
  n = n + 1
  per[arm] = (per[arm] or 0) + 1
  if arm == 'control' then
    redis.call('HSET', P .. 'lc:' .. cid, 'camp', id, 'var', 'control', 'msg', '', 'at', now,
               'win', f[4] or '0')
  else
    q[#q + 1] = cid .. ' ' .. arm
    if #q >= 500 then redis.call('RPUSH', cq, unpack(q)); q = {} end
  end
end
if #q > 0 then redis.call('RPUSH', cq, unpack(q)) end
if n > 0 then redis.call('HINCRBY', cs, 'targeted', n) end
for arm, k in pairs(per) do redis.call('HINCRBY', cs, arm .. ':targeted', k) end
redis.call('HSET', ck, 'fan_cursor', ARGV[5])
if ARGV[6] == '1' then redis.call('HSET', ck, 'fan_done', '1', 'fan_done_at', now) end
return {'ok', n}
