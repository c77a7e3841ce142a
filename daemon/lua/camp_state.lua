-- camp_state: one lifecycle transition, recorded in the campaign's history.
-- ARGV: 1 prefix, 2 id, 3 now, 4 verb (launch|pause|resume|cancel|start|complete|self_pause|
--       rearm),
--       5 reason, 6 who, then field/value pairs stored with the transition (launch: the
--       segment and template snapshots, start).
-- The table must match camp_transition_allowed() in daemon/campaign.c.
-- Parked messages (a paused campaign's claimed messages) go back to the schedule on resume
-- and on cancel (the claim then cancels them); the recipient list is dropped on cancel.
-- Returns {'ok', from, to} | {'not_found'} | {'bad_transition', current}.
local P, id, now, verb, reason, who = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local ck = P .. 'cp:' .. id
local f = redis.call('HMGET', ck, 'state', 'start')
local st = f[1]
if not st then return {'not_found'} end
local allowed = {
  draft = {scheduled = 1, running = 1, cancelled = 1},
  scheduled = {running = 1, paused = 1, cancelled = 1},
  running = {paused = 1, completed = 1, cancelled = 1, scheduled = 1},
  paused = {running = 1, scheduled = 1, cancelled = 1},
}
local to
local start = tonumber(f[2] or '0') or 0
for i = 7, #ARGV - 1, 2 do
  if ARGV[i] == 'start' then start = tonumber(ARGV[i + 1]) end
end
if verb == 'launch' then
  if st ~= 'draft' then return {'bad_transition', st} end
  if start > tonumber(now) then to = 'scheduled' else to = 'running' end
elseif verb == 'pause' or verb == 'self_pause' then
  to = 'paused'
elseif verb == 'resume' then
  if st ~= 'paused' then return {'bad_transition', st} end
  if start > tonumber(now) then to = 'scheduled' else to = 'running' end
elseif verb == 'cancel' then
  to = 'cancelled'
elseif verb == 'start' then
  if st ~= 'scheduled' then return {'bad_transition', st} end
  to = 'running'
elseif verb == 'complete' then
  to = 'completed'
elseif verb == 'rearm' then
  -- a recurring campaign's next run: the audience is walked again
  if st ~= 'running' then return {'bad_transition', st} end
  to = 'scheduled'
  redis.call('HSET', ck, 'fan_cursor', '', 'fan_done', '0')
  redis.call('HINCRBY', ck, 'runs', 1)
else
  return {'bad_transition', st}
end
if not (allowed[st] and allowed[st][to]) then return {'bad_transition', st} end
for i = 7, #ARGV - 1, 2 do redis.call('HSET', ck, ARGV[i], ARGV[i + 1]) end
redis.call('HSET', ck, 'state', to, 'updated', now, 'reason', reason)
if to == 'running' or to == 'scheduled' then
  redis.call('SADD', P .. 'camps:active', id)
else
  redis.call('SREM', P .. 'camps:active', id)
end
if verb == 'resume' or to == 'cancelled' then
  local parked = redis.call('SMEMBERS', P .. 'cpk:' .. id)
  for _, m in ipairs(parked) do
    if redis.call('HGET', P .. 'm:' .. m, 'state') == 'scheduled' then
      redis.call('HDEL', P .. 'm:' .. m, 'parked')
      redis.call('ZADD', P .. 'due', now, m)
    end
  end
  redis.call('DEL', P .. 'cpk:' .. id)
end
if to == 'cancelled' then
  local n = redis.call('LLEN', P .. 'cq:' .. id)
  if n > 0 then
    redis.call('HINCRBY', P .. 'cs:' .. id, 'cancelled', n)
    redis.call('DEL', P .. 'cq:' .. id)
  end
end
local h = {at = tonumber(now), state = to, from = st, verb = verb}
if reason ~= '' then h.reason = reason end
if who ~= '' then h.by = who end
redis.call('RPUSH', P .. 'cph:' .. id, cjson.encode(h))
return {'ok', st, to}
