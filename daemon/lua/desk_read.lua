-- desk_read: reading the complaints desk's tickets (daemon/store_desk.c, docs/desk.md).
-- Keys (read only): P tk:{id}, P tkm:{id}, P tickets, P tks:{state}, P tkt:{team},
-- P tkt:{team}:{state}, P tkfr:{team} (see lua/desk_ticket.lua).
--
-- 'get'   3 ticket -> {hash (HGETALL form, empty when none), {conversation JSON...}}
-- 'list'  3 team ('' = any), 4 state ('' = any), 5 cursor (exclusive, '' = start), 6 limit
--         -> {next cursor or '', {hash}...} in id (creation) order
-- 'stats' 3 team, 4 since (ms), 5 max samples
--         -> {open, assigned, answered, closed, {"{ticket}:{first response ms}"...} newest first,
--         at most max samples}
local P, mode = ARGV[1], ARGV[2]

if mode == 'get' then
  local tk = ARGV[3]
  return {redis.call('HGETALL', P .. 'tk:' .. tk), redis.call('LRANGE', P .. 'tkm:' .. tk, 0, -1)}
elseif mode == 'list' then
  local team, state, cursor, limit = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
  local k
  if team ~= '' and state ~= '' then
    k = P .. 'tkt:' .. team .. ':' .. state
  elseif team ~= '' then
    k = P .. 'tkt:' .. team
  elseif state ~= '' then
    k = P .. 'tks:' .. state
  else
    k = P .. 'tickets'
  end
  local from = '-'
  if cursor ~= '' then from = '(' .. cursor end
  local ids = redis.call('ZRANGEBYLEX', k, from, '+', 'LIMIT', 0, limit + 1)
  local out, nxt = {}, ''
  for i, id in ipairs(ids) do
    if i > limit then
      nxt = ids[limit]
      break
    end
    out[#out + 1] = redis.call('HGETALL', P .. 'tk:' .. id)
  end
  return {nxt, out}
elseif mode == 'stats' then
  local team = ARGV[3]
  local n = {}
  for i, s in ipairs({'open', 'assigned', 'answered', 'closed'}) do
    n[i] = redis.call('ZCARD', P .. 'tkt:' .. team .. ':' .. s)
  end
  local fr = redis.call('ZREVRANGEBYSCORE', P .. 'tkfr:' .. team, '+inf', ARGV[4], 'LIMIT', 0,
                        tonumber(ARGV[5]))
  return {n[1], n[2], n[3], n[4], fr}
end
return redis.error_reply('desk_read: unknown mode')
