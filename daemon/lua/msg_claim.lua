-- msg_claim: the atomic ready -> sending step, for a batch of stream entries.
-- ARGV: 1 prefix, 2 now, 3 lease until (ms), 4 group, 5 retention of an ended message in
--       seconds (0 = forever), 6 frequency caps ("category:window_ms:max,..."; '' = none),
--       then quadruples
--       (message id, stream entry id, lane, owner token).  Repeating a claim with the same
--       owner token (its answer was lost) answers 'ok' again without a second attempt.
-- Returns one result per entry, in order:
--         {'ok', reclaimed(0|1), message HGETALL, contact HGETALL, campaign version,
--          capped reason or ''}
--       A message over a frequency cap of its category (never transactional) is claimed
--       with the reason 'frequency_cap:<category>' for the dispatcher to suppress; one under
--       its caps is counted in fc:{contact}:{category} (a rolling window; msg_settle takes it
--       back unless the message was sent).  A message with field nocap (a survey's next
--       question, in a conversation the contact is answering) is neither checked nor counted.
--       A campaign message whose campaign is not running is not claimed: paused or
--       scheduled -> parked (state scheduled, in cpk:{camp} until resume); cancelled or
--       gone -> cancelled.  Both answer {'skip', state}.
--       | {'busy'} (another live instance holds it: leave the entry pending)
--       | {'skip', state} (entry was stale and is acknowledged) | {'expired'} | {'gone'}.
local P, now, lease, group = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local ttl = tonumber(ARGV[5]) or 0
local caps = {}
for cat, win, max in string.gmatch(ARGV[6] or '', '([%w_]+):(%d+):(%d+)') do
  caps[cat] = caps[cat] or {}
  table.insert(caps[cat], {tonumber(win), tonumber(max)})
end

-- '' when the message may go, else the suppression reason.  Counts it when it may.
local function cap_check(id, cid, cat, nocap)
  local cc = caps[cat or '']
  if not cc or not cid or cat == 'transactional' or nocap then return '' end
  local key = P .. 'fc:' .. cid .. ':' .. cat
  local longest = 0
  for _, c in ipairs(cc) do if c[1] > longest then longest = c[1] end end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - longest)
  if not redis.call('ZSCORE', key, id) then
    for _, c in ipairs(cc) do
      if redis.call('ZCOUNT', key, now - c[1], '+inf') >= c[2] then
        return 'frequency_cap:' .. cat
      end
    end
  end
  redis.call('ZADD', key, now, id)
  redis.call('PEXPIRE', key, longest)
  return ''
end

local function claim(id, sid, lane, owner)
  local q = P .. 'q:' .. lane
  local mk = P .. 'm:' .. id
  local f = redis.call('HMGET', mk, 'state', 'lease', 'expires', 'contact', 'owner', 'camp',
                       'category', 'nocap')
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
    local cv = false
    if f[6] then cv = redis.call('HGET', P .. 'cp:' .. f[6], 'v') end
    return {'ok', 0, redis.call('HGETALL', mk), c, cv, cap_check(id, f[4], f[7], f[8])}
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
  local cv = false
  if f[6] then
    local cf = redis.call('HMGET', P .. 'cp:' .. f[6], 'state', 'v')
    if cf[1] ~= 'running' then
      redis.call('XACK', q, group, sid); redis.call('XDEL', q, sid)
      redis.call('HDEL', mk, 'lease', 'owner', 'sid')
      if cf[1] == 'paused' or cf[1] == 'scheduled' then
        redis.call('HSET', mk, 'state', 'scheduled', 'parked', '1')
        redis.call('SADD', P .. 'cpk:' .. f[6], id)
        redis.call('RPUSH', P .. 'mh:' .. id,
                   '{"at":' .. ARGV[2] .. ',"state":"scheduled","reason":"campaign_paused"}')
        return {'skip', 'parked'}
      end
      redis.call('HSET', mk, 'state', 'cancelled', 'last_error', 'campaign_cancelled')
      redis.call('RPUSH', P .. 'mh:' .. id,
                 '{"at":' .. ARGV[2] .. ',"state":"cancelled","reason":"campaign_cancelled"}')
      redis.call('HINCRBY', P .. 'stats', 'cancelled', 1)
      local cs = P .. 'cs:' .. f[6]
      redis.call('HINCRBY', cs, 'cancelled', 1); redis.call('HINCRBY', cs, 'done', 1)
      if ttl > 0 then
        redis.call('EXPIRE', mk, ttl); redis.call('EXPIRE', P .. 'mh:' .. id, ttl)
      end
      return {'skip', 'cancelled'}
    end
    cv = cf[2]
  end
  local n = redis.call('HINCRBY', mk, 'attempts', 1)
  redis.call('HSET', mk, 'state', 'sending', 'lease', lease, 'owner', owner, 'sid', sid)
  redis.call('RPUSH', P .. 'mh:' .. id,
             '{"at":' .. ARGV[2] .. ',"state":"sending","attempt":' .. n .. '}')
  local c = {}
  if f[4] then c = redis.call('HGETALL', P .. 'c:' .. f[4]) end
  return {'ok', reclaimed, redis.call('HGETALL', mk), c, cv, cap_check(id, f[4], f[7], f[8])}
end

local out = {}
for i = 7, #ARGV - 3, 4 do
  out[#out + 1] = claim(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])
end
return out
