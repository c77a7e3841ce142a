-- raffle_write: a raffle's life outside its entries: create (with the secret seed and its
-- public commitment), delete (only before any entry), and the draw, done exactly once even
-- with several clubd instances: 'lock' moves the raffle to state 'drawing' under a lease
-- (entries stop), the caller computes the winners with draw.c, 'finish' stores the record
-- only while it still holds the lease, 'notified' records the winners' messages.  A lease
-- that runs out (a crashed instance) is taken over; the same seed and entries give the
-- same winners, so a takeover can never draw differently.  (daemon/store_raffles.c)
-- Keys: P rf:{id} hash (json, seed, commit, state open|drawing|drawn, created, the entry
--       rules, counters, lease_owner, lease_until, drawn, notify none|pending|done),
--       P raffles zset (ids, score 0), P raffles:open set, P rfv:{id} set (unused codes),
--       P rfu:{id} hash (used code -> contact), P rfk:{id} hash (entry idempotency),
--       P rfl:{id} stream (entries), P rfn:{id} / P rfw:{id} hash (contact -> entries /
--       weight), P rfd:{id} hash (the draw record), P tl:{cid} (timeline), P c:{cid},
--       P tpl:{id} (read only).
-- ARGV: 1 prefix, 2 op, 3 now (ms), 4 raffle id, then per op:
--  create:   5 public JSON, 6 seed (hex), 7 commit (hex), 8 number of rule strings (pairs),
--            9.. rule field/value pairs, then the codes -> {'ok'} | {'exists'}
--  delete:   -> {'ok'} | {'not_found'} | {'conflict', state, entries}
--  lock:     5 owner, 6 lease (ms), 7 force (1|0)
--            -> {'ok', seed, commit, winners, {contact, weight, ...}}
--             | {'renotify', template JSON, raffle JSON, {contact id, contact HGETALL}...}
--             | {'not_found'} | {'early', ends} | {'busy', lease_until} | {'drawn'}
--  finish:   5 owner, 6 digest, 7 entries, 8 total weight, 9 k, 10 entries text, 11 winners
--            JSON, 12 timeline max, 13 lease (ms), 14.. winner ids in order
--            -> {'ok', template JSON, raffle JSON, {contact id, contact HGETALL}...}
--             | {'lost', state}
--  notified: 5 owner, 6 notifications JSON -> {'ok'} | {'lost'}
local P, op, now, id = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local rk = P .. 'rf:' .. id
local function fmt(n) return string.format('%d', n) end

local function template(tid)
  if not tid or tid == '' then return '' end
  return redis.call('HGET', P .. 'tpl:' .. tid, 'json') or ''
end

-- {status, template JSON, raffle JSON, {cid, HGETALL}...} for the winners' messages
local function winners_out(status, tid, ids)
  local out = {status, template(tid), redis.call('HGET', rk, 'json') or '{}'}
  for _, cid in ipairs(ids) do
    out[#out + 1] = {cid, redis.call('HGETALL', P .. 'c:' .. cid)}
  end
  return out
end

if op == 'create' then
  if redis.call('EXISTS', rk) == 1 then return {'exists'} end
  local npairs = tonumber(ARGV[8])
  local f = {'json', ARGV[5], 'seed', ARGV[6], 'commit', ARGV[7], 'state', 'open',
             'created', fmt(now), 'entries', 0, 'contacts', 0, 'weight', 0, 'codes_used', 0,
             'notify', 'none'}
  for i = 9, 8 + npairs do f[#f + 1] = ARGV[i] end
  local first = 9 + npairs
  f[#f + 1] = 'codes'
  f[#f + 1] = fmt(#ARGV - first + 1)
  redis.call('HSET', rk, unpack(f))
  for i = first, #ARGV, 1000 do
    local last = i + 999
    if last > #ARGV then last = #ARGV end
    redis.call('SADD', P .. 'rfv:' .. id, unpack(ARGV, i, last))
  end
  redis.call('ZADD', P .. 'raffles', 0, id)
  redis.call('SADD', P .. 'raffles:open', id)
  return {'ok'}
end

if op == 'delete' then
  local h = redis.call('HMGET', rk, 'state', 'entries')
  if not h[1] then return {'not_found'} end
  if h[1] ~= 'open' or tonumber(h[2] or '0') > 0 then return {'conflict', h[1], h[2] or '0'} end
  redis.call('DEL', rk, P .. 'rfv:' .. id, P .. 'rfu:' .. id, P .. 'rfk:' .. id,
             P .. 'rfl:' .. id, P .. 'rfn:' .. id, P .. 'rfw:' .. id)
  redis.call('ZREM', P .. 'raffles', id)
  redis.call('SREM', P .. 'raffles:open', id)
  return {'ok'}
end

if op == 'lock' then
  local owner, lease, force = ARGV[5], tonumber(ARGV[6]), ARGV[7]
  local h = redis.call('HMGET', rk, 'state', 'ends', 'lease_owner', 'lease_until', 'seed',
                       'commit', 'win', 'ntpl', 'notify')
  local state = h[1]
  if not state then return {'not_found'} end
  local until_ = tonumber(h[4] or '0')
  if state == 'drawn' then
    -- an instance died between the draw and the winners' messages: queue them again
    -- (their idempotency keys make that safe), under the same lease rule
    if h[9] == 'pending' and (until_ <= now or h[3] == owner) then
      redis.call('HSET', rk, 'lease_owner', owner, 'lease_until', fmt(now + lease))
      local w = cjson.decode(redis.call('HGET', P .. 'rfd:' .. id, 'winners') or '[]')
      return winners_out('renotify', h[8], w)
    end
    return {'drawn'}
  end
  if state == 'drawing' and until_ > now and h[3] ~= owner then
    return {'busy', fmt(until_)}
  end
  if state == 'open' and now < tonumber(h[2]) and force ~= '1' then
    return {'early', h[2]}
  end
  redis.call('HSET', rk, 'state', 'drawing', 'lease_owner', owner, 'lease_until',
             fmt(now + lease))
  redis.call('SREM', P .. 'raffles:open', id)
  return {'ok', h[5], h[6], h[7], redis.call('HGETALL', P .. 'rfw:' .. id)}
end

if op == 'finish' then
  local owner = ARGV[5]
  local h = redis.call('HMGET', rk, 'state', 'lease_owner', 'seed', 'commit', 'ntpl')
  if h[1] ~= 'drawing' or h[2] ~= owner then return {'lost', h[1] or ''} end
  local k, tlmax, lease = tonumber(ARGV[9]), tonumber(ARGV[12]), tonumber(ARGV[13])
  redis.call('HSET', P .. 'rfd:' .. id, 'algorithm', 'clubd-draw-v1', 'seed', h[3],
             'commit', h[4], 'digest', ARGV[6], 'n', ARGV[7], 'total', ARGV[8], 'k', ARGV[9],
             'entries', ARGV[10], 'winners', ARGV[11], 'at', fmt(now), 'notifications', '[]')
  local notify = 'none'
  if (h[5] or '') ~= '' and k > 0 then notify = 'pending' end
  redis.call('HSET', rk, 'state', 'drawn', 'drawn', fmt(now), 'notify', notify,
             'lease_until', fmt(now + lease))
  local ids = {}
  for i = 14, #ARGV do
    ids[#ids + 1] = ARGV[i]
    if tlmax > 0 then
      redis.call('XADD', P .. 'tl:' .. ARGV[i], 'MAXLEN', '~', tlmax, '*', 'type', 'raffle',
                 'raffle', id, 'result', 'won', 'rank', fmt(i - 13))
    end
  end
  if notify == 'none' then ids = {} end
  return winners_out('ok', h[5], ids)
end

if op == 'notified' then
  local h = redis.call('HMGET', rk, 'state', 'lease_owner')
  if h[1] ~= 'drawn' or h[2] ~= ARGV[5] then return {'lost'} end
  redis.call('HSET', P .. 'rfd:' .. id, 'notifications', ARGV[6])
  redis.call('HSET', rk, 'notify', 'done')
  redis.call('HDEL', rk, 'lease_owner', 'lease_until')
  return {'ok'}
end

return redis.error_reply('raffle_write: unknown op ' .. op)
