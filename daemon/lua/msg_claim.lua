-- msg_claim: the atomic ready -> sending step, for a batch of stream entries.
-- ARGV: 1 prefix, 2 now, 3 lease until (ms), 4 group, 5 retention of an ended message in
--       seconds (0 = forever), then quadruples
--       (message id, stream entry id, lane, owner token).  Repeating a claim with the same
--       owner token (its answer was lost) answers 'ok' again without a second attempt.
-- Returns one result per entry, in order:
--         {'ok', reclaimed(0|1), message HGETALL, contact HGETALL}
--       | {'busy'} (another live instance holds it: leave the entry pending)
--       | {'skip', state} (entry was stale and is acknowledged) | {'expired'} | {'gone'}.
local P, now, lease, group = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local ttl = tonumber(ARGV[5]) or 0

local function claim(id, sid, lane, owner)
  local q = P .. 'q:' .. lane
  local mk = P .. 'm:' .. id
  local f = redis.call('HMGET', mk, 'state', 'lease', 'expires', 'contact', 'owner')
  local st = f[1]
  if not st then
    redis.call('XACK', q, group, sid); redis.call('XDEL', q, sid)
    return {'gone'}
  end
  local reclaimed = 0
  if st == 'sending' and f[5] == owner then
    -- A retry of our own claim whose answer was lost: it did apply.
    local c = {}
    if f[4] then c = redis.call('HGETALL', P .. 'c:' .. f[4]) end
    return {'ok', 0, redis.call('HGETALL', mk), c}
  elseif st == 'sending' then
    if f[2] and tonumber(f[2]) > now then return {'busy'} end
    reclaimed = 1
    redis.call('HINCRBY', P .. 'stats', 'reclaimed', 1)
  elseif st ~= 'ready' then
    redis.call('XACK', q, group, sid); redis.call('XDEL', q, sid)
    return {'skip', st}
  end
  if f[3] and tonumber(f[3]) < now then
    redis.call('HSET', mk, 'state', 'expired', 'last_error', 'expired')
    redis.call('HDEL', mk, 'lease', 'owner', 'sid')
    redis.call('XADD', P .. 'dlq', '*', 'm', id, 'reason', 'expired', 'at', ARGV[2])
    redis.call('RPUSH', P .. 'mh:' .. id,
               '{"at":' .. ARGV[2] .. ',"state":"expired","reason":"expired"}')
    redis.call('HINCRBY', P .. 'stats', 'expired', 1)
    redis.call('XACK', q, group, sid); redis.call('XDEL', q, sid)
    if ttl > 0 then
      redis.call('EXPIRE', mk, ttl); redis.call('EXPIRE', P .. 'mh:' .. id, ttl)
    end
    return {'expired'}
  end
  local n = redis.call('HINCRBY', mk, 'attempts', 1)
  redis.call('HSET', mk, 'state', 'sending', 'lease', lease, 'owner', owner, 'sid', sid)
  redis.call('RPUSH', P .. 'mh:' .. id,
             '{"at":' .. ARGV[2] .. ',"state":"sending","attempt":' .. n .. '}')
  local c = {}
  if f[4] then c = redis.call('HGETALL', P .. 'c:' .. f[4]) end
  return {'ok', reclaimed, redis.call('HGETALL', mk), c}
end

local out = {}
for i = 6, #ARGV - 3, 4 do
  out[#out + 1] = claim(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
end
return out
