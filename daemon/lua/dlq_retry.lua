-- dlq_retry: an operator sends a dead letter again.  The message (failed or expired) gets a
-- fresh schedule: state scheduled, due now, attempts 0, a new expiry; the dead-letter entry
-- is deleted.  This is the one way out of a final state, and only an admin can ask for it.
-- ARGV: 1 prefix, 2 dead-letter entry id, 3 now, 4 new expiry (ms).
-- Returns {'ok', message id} | {'gone'} (no such entry) | {'bad_state', state, message id}.
local P, eid, now = ARGV[1], ARGV[2], ARGV[3]
local e = redis.call('XRANGE', P .. 'dlq', eid, eid)
if #e == 0 then return {'gone'} end
local f = e[1][2]
local id = nil
for i = 1, #f - 1, 2 do if f[i] == 'm' then id = f[i + 1] end end
if not id then redis.call('XDEL', P .. 'dlq', eid); return {'gone'} end
local mk = P .. 'm:' .. id
local st = redis.call('HGET', mk, 'state')
if st ~= 'failed' and st ~= 'expired' then return {'bad_state', st or 'gone', id} end
redis.call('HSET', mk, 'state', 'scheduled', 'due', now, 'expires', ARGV[4], 'attempts', 0,
           'updated', now)
redis.call('HDEL', mk, 'dlr_early', 'dlr_code')
redis.call('ZADD', P .. 'due', now, id)
redis.call('XDEL', P .. 'dlq', eid)
redis.call('RPUSH', P .. 'mh:' .. id, '{"at":' .. now .. ',"state":"scheduled","reason":"requeued from the dead letters"}')
redis.call('HINCRBY', P .. 'stats', 'requeued', 1)
return {'ok', id}
