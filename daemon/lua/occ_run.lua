-- occ_run: the run records of occasion rules, shared by every instance.
-- P occ:run:{id} is an operator's run (POST /v1/occasions/{id}/run), P occ:live:{id}
-- the periodic pass.  Fields: state (running|done|failed), date ('' = each contact's
-- local today), owner (instance, '' = free), lease (ms: after it another instance may
-- take the work over), cursor (resume point of the contact walk), started, finished,
-- next (live: earliest start of the next pass), error, and counters examined, matched,
-- created, dup, missed, errors.  Every write checks the owner: a slow instance that
-- lost its lease changes nothing.
-- ARGV: 1 prefix, 2 op, 3 which (run|live), 4 rule id, 5 owner, 6 now, 7 lease ms, then:
--   start:   8 date                     -> {'ok'} | {'busy', date, started} | {'gone'}
--   claim:   8 interval ms (live)       -> {'ok', date, cursor, json, v, started} | {'no'} | {'gone'}
--   step:    8 cursor, 9 done (0|1), 10.. counter/delta pairs -> 1 | 0 (not the owner)
--   fail:    8 reason                   -> 1 | 0
--   release:                            -> 1 | 0
local P, op, which, id, owner = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, lease = tonumber(ARGV[6]), tonumber(ARGV[7])
local rk = P .. 'occ:' .. id
local k = P .. 'occ:' .. which .. ':' .. id
local COUNTERS = {'examined', 'matched', 'created', 'dup', 'missed', 'errors'}

local function fresh(date)
  redis.call('DEL', k)
  redis.call('HSET', k, 'state', 'running', 'date', date, 'cursor', '', 'started', now,
             'finished', 0, 'owner', '', 'lease', 0)
  for _, c in ipairs(COUNTERS) do redis.call('HSET', k, c, 0) end
end

if op == 'start' then
  if redis.call('EXISTS', rk) == 0 then return {'gone'} end
  local s = redis.call('HMGET', k, 'state', 'lease', 'date', 'started')
  if s[1] == 'running' and tonumber(s[2] or 0) > now then return {'busy', s[3], s[4]} end
  fresh(ARGV[8])
  redis.call('HSET', k, 'lease', now + lease)
  return {'ok'}
end

if op == 'claim' then
  local rule = redis.call('HMGET', rk, 'json', 'v')
  if not rule[1] then return {'gone'} end
  local s = redis.call('HMGET', k, 'state', 'owner', 'lease', 'next')
  if s[1] == 'running' then
    if s[2] ~= '' and s[2] ~= owner and tonumber(s[3] or 0) > now then return {'no'} end
  elseif which == 'live' then
    if tonumber(s[4] or 0) > now then return {'no'} end
    fresh('')
    redis.call('HSET', k, 'next', now + tonumber(ARGV[8]))
  else
    return {'no'}
  end
  redis.call('HSET', k, 'owner', owner, 'lease', now + lease)
  local r = redis.call('HMGET', k, 'date', 'cursor', 'started')
  return {'ok', r[1], r[2], rule[1], rule[2], r[3]}
end

local s = redis.call('HMGET', k, 'state', 'owner')
if s[1] ~= 'running' or s[2] ~= owner then return 0 end
if op == 'step' then
  for i = 10, #ARGV - 1, 2 do redis.call('HINCRBY', k, ARGV[i], ARGV[i + 1]) end
  redis.call('HSET', k, 'cursor', ARGV[8], 'lease', now + lease)
  if ARGV[9] == '1' then
    redis.call('HSET', k, 'state', 'done', 'finished', now, 'owner', '', 'lease', 0)
  end
  return 1
end
if op == 'fail' then
  redis.call('HSET', k, 'state', 'failed', 'error', ARGV[8], 'finished', now, 'owner', '',
             'lease', 0)
  return 1
end
if op == 'release' then
  redis.call('HSET', k, 'owner', '', 'lease', 0)
  return 1
end
return redis.error_reply('occ_run: unknown op')
