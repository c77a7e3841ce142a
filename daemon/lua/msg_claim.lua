-- msg_claim: the atomic ready -> sending step for one stream entry.
-- ARGV: 1 prefix, 2 id, 3 now, 4 owner token, 5 lease until (ms), 6 stream entry id, 7 lane,
--       8 group.
-- Returns {'ok', reclaimed(0|1), message HGETALL, contact HGETALL}
--       | {'busy'} (another live instance holds it: leave the entry pending)
--       | {'skip', state} (entry was stale and is acknowledged) | {'expired'} | {'gone'}.
local P, id, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local q = P .. 'q:' .. ARGV[7]
local mk = P .. 'm:' .. id
local f = redis.call('HMGET', mk, 'state', 'lease', 'expires', 'contact')
local st = f[1]
if not st then
  redis.call('XACK', q, ARGV[8], ARGV[6]); redis.call('XDEL', q, ARGV[6])
  return {'gone'}
end
local reclaimed = 0
if st == 'sending' then
  if f[2] and tonumber(f[2]) > now then return {'busy'} end
  reclaimed = 1
  redis.call('HINCRBY', P .. 'stats', 'reclaimed', 1)
elseif st ~= 'ready' then
  redis.call('XACK', q, ARGV[8], ARGV[6]); redis.call('XDEL', q, ARGV[6])
  return {'skip', st}
end
if f[3] and tonumber(f[3]) < now then
  redis.call('HSET', mk, 'state', 'expired', 'last_error', 'expired')
  redis.call('HDEL', mk, 'lease', 'owner', 'sid')
  redis.call('XADD', P .. 'dlq', '*', 'm', id, 'reason', 'expired', 'at', ARGV[3])
  redis.call('RPUSH', P .. 'mh:' .. id, '{"at":' .. ARGV[3] .. ',"state":"expired","reason":"expired"}')
  redis.call('HINCRBY', P .. 'stats', 'expired', 1)
  redis.call('XACK', q, ARGV[8], ARGV[6]); redis.call('XDEL', q, ARGV[6])
  return {'expired'}
end
local n = redis.call('HINCRBY', mk, 'attempts', 1)
redis.call('HSET', mk, 'state', 'sending', 'lease', ARGV[5], 'owner', ARGV[4], 'sid', ARGV[6])
redis.call('RPUSH', P .. 'mh:' .. id,
           '{"at":' .. ARGV[3] .. ',"state":"sending","attempt":' .. n .. '}')
local c = {}
if f[4] then c = redis.call('HGETALL', P .. 'c:' .. f[4]) end
return {'ok', reclaimed, redis.call('HGETALL', mk), c}
