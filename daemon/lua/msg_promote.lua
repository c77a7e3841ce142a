-- msg_promote: move due messages from the schedule to their ready stream.
-- ARGV: 1 prefix, 2 now, 3 limit, 4 retention of an ended message in seconds (0 = forever).
-- Returns {examined, moved, expired}.
local P, now, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ttl = tonumber(ARGV[4] or '0') or 0
local ids = redis.call('ZRANGEBYSCORE', P .. 'due', '-inf', now, 'LIMIT', 0, limit)
local moved, expired = 0, 0
for _, id in ipairs(ids) do
  redis.call('ZREM', P .. 'due', id)
  local mk = P .. 'm:' .. id
  local f = redis.call('HMGET', mk, 'state', 'expires', 'lane', 'contact')
  if f[1] == 'scheduled' then
    if f[2] and tonumber(f[2]) < tonumber(now) then
      redis.call('HSET', mk, 'state', 'expired', 'last_error', 'expired')
      redis.call('XADD', P .. 'dlq', '*', 'm', id, 'reason', 'expired', 'at', now)
      redis.call('RPUSH', P .. 'mh:' .. id, '{"at":' .. now .. ',"state":"expired","reason":"expired"}')
      redis.call('HINCRBY', P .. 'stats', 'expired', 1)
      if ttl > 0 then
        redis.call('EXPIRE', mk, ttl); redis.call('EXPIRE', P .. 'mh:' .. id, ttl)
      end
      expired = expired + 1
    else
      redis.call('HSET', mk, 'state', 'ready')
      redis.call('XADD', P .. 'q:' .. f[3], '*', 'm', id)
      redis.call('RPUSH', P .. 'mh:' .. id, '{"at":' .. now .. ',"state":"ready"}')
      moved = moved + 1
    end
  end
end
return {#ids, moved, expired}
