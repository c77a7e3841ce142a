-- raffle_read: what the API shows of raffles.  The secret seed never leaves Redis before the
-- draw: every read here drops the 'seed' field while the state is not 'drawn'.
-- (daemon/store_raffles.c; keys as in raffle_write.lua)
-- ARGV: 1 prefix, 2 op, then per op:
--  get:     3 raffle id -> the rf:{id} hash (HGETALL form, seed only once drawn), {} if none
--  list:    3 cursor ('' = from the start; exclusive), 4 limit
--           -> {next cursor or '', {id, hash}...}
--  entries: 3 raffle id, 4 cursor ('' = oldest; exclusive), 5 limit
--           -> {0} (no raffle) | {1, XRANGE page}
--  draw:    3 raffle id -> {state or '', the rf:{id} hash, the rfd:{id} hash}
local P, op = ARGV[1], ARGV[2]

local function public(id)
  local h = redis.call('HGETALL', P .. 'rf:' .. id)
  local state = nil
  for i = 1, #h, 2 do
    if h[i] == 'state' then state = h[i + 1] end
  end
  if state == 'drawn' then return h end
  local out = {}
  for i = 1, #h, 2 do
    if h[i] ~= 'seed' then
      out[#out + 1] = h[i]
      out[#out + 1] = h[i + 1]
    end
  end
  return out
end

if op == 'get' then
  return public(ARGV[3])
end

if op == 'list' then
  local cur, limit = ARGV[3], tonumber(ARGV[4])
  local from = '-'
  if cur ~= '' then from = '(' .. cur end
  local ids = redis.call('ZRANGEBYLEX', P .. 'raffles', from, '+', 'LIMIT', 0, limit + 1)
  local out = {''}
  local n = #ids
  if n > limit then n = limit; out[1] = ids[limit] end
  for i = 1, n do
    local h = public(ids[i])
    if #h > 0 then out[#out + 1] = {ids[i], h} end
  end
  return out
end

if op == 'entries' then
  local id, cur, limit = ARGV[3], ARGV[4], tonumber(ARGV[5])
  if redis.call('EXISTS', P .. 'rf:' .. id) == 0 then return {0} end
  local from = '-'
  if cur ~= '' then from = '(' .. cur end
  return {1, redis.call('XRANGE', P .. 'rfl:' .. id, from, '+', 'COUNT', limit)}
end

if op == 'draw' then
  local id = ARGV[3]
  local state = redis.call('HGET', P .. 'rf:' .. id, 'state') or ''
  if state ~= 'drawn' then return {state, {}, {}} end
  return {state, public(id), redis.call('HGETALL', P .. 'rfd:' .. id)}
end

return redis.error_reply('raffle_read: unknown op ' .. op)
