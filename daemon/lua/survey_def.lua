-- survey_def: survey definitions (daemon/store_surveys.c; docs/surveys.md).  ARGV[2] is the mode.
-- Keys: P svy:{id} hash (json, v, created, updated), P surveys zset of ids (score 0),
--       P svs:{id} hash counters, P svc:{id} zset contacts sent to, P svr:{id} zset contacts
--       who answered, P sva:{id}:{cid} hash answers, P svt:{id}:{qid} stream free texts,
--       P sv:{cid} hash the open conversation, P eng:answered:{id} set.
--
-- 'create'  3 id, 4 json (canonical: every question has its id), 5 now -> {'ok', v} | {'exists'}
-- 'replace' 3 id, 4 json, 5 now, 6 expected v ('' = any)
--           -> {'ok', v} | {'not_found'} | {'conflict', v} | {'launched', contacts sent}
-- 'delete'  3 id, 4 force ('1': also a launched survey with its results)
--           -> {'ok', contacts sent} | {'not_found'} | {'launched', contacts sent}
-- 'get'     3 id -> {definition hash, counters hash} (both empty when there is no survey)
-- 'list'    3 cursor ('' = start; exclusive), 4 limit -> {next cursor or '', {id, hash, counters}...}
local P, mode = ARGV[1], ARGV[2]

if mode == 'list' then
  local cur, limit = ARGV[3], tonumber(ARGV[4])
  local from = '-'
  if cur ~= '' then from = '(' .. cur end
  local ids = redis.call('ZRANGEBYLEX', P .. 'surveys', from, '+', 'LIMIT', 0, limit + 1)
  local out = {''}
  local n = #ids
  if n > limit then n = limit; out[1] = ids[limit] end
  for i = 1, n do
    local h = redis.call('HGETALL', P .. 'svy:' .. ids[i])
    if #h > 0 then
      out[#out + 1] = {ids[i], h, redis.call('HGETALL', P .. 'svs:' .. ids[i])}
    end
  end
  return out
end

local id = ARGV[3]
local k = P .. 'svy:' .. id
if mode == 'get' then
  return {redis.call('HGETALL', k), redis.call('HGETALL', P .. 'svs:' .. id)}
end

local exists = redis.call('EXISTS', k) == 1
local sent = redis.call('ZCARD', P .. 'svc:' .. id)

if mode == 'create' then
  if exists then return {'exists'} end
  redis.call('HSET', k, 'json', ARGV[4], 'v', 1, 'created', ARGV[5], 'updated', ARGV[5])
  redis.call('ZADD', P .. 'surveys', 0, id)
  return {'ok', 1}
elseif mode == 'replace' then
  if not exists then return {'not_found'} end
  local cur = redis.call('HGET', k, 'v')
  if ARGV[6] ~= '' and cur ~= ARGV[6] then return {'conflict', tonumber(cur) or 0} end
  if sent > 0 then return {'launched', sent} end
  local v = redis.call('HINCRBY', k, 'v', 1)
  redis.call('HSET', k, 'json', ARGV[4], 'updated', ARGV[5])
  return {'ok', v}
elseif mode == 'delete' then
  if not exists then return {'not_found'} end
  if sent > 0 and ARGV[4] ~= '1' then return {'launched', sent} end
  local ok, def = pcall(cjson.decode, redis.call('HGET', k, 'json') or '')
  if ok and type(def) == 'table' and type(def.questions) == 'table' then
    for _, q in ipairs(def.questions) do
      if type(q) == 'table' and type(q.id) == 'string' then
        redis.call('DEL', P .. 'svt:' .. id .. ':' .. q.id)
      end
    end
  end
  for _, cid in ipairs(redis.call('ZRANGE', P .. 'svc:' .. id, 0, -1)) do
    redis.call('DEL', P .. 'sva:' .. id .. ':' .. cid)
    if redis.call('HGET', P .. 'sv:' .. cid, 'survey') == id then
      redis.call('DEL', P .. 'sv:' .. cid)
    end
  end
  redis.call('DEL', k, P .. 'svs:' .. id, P .. 'svc:' .. id, P .. 'svr:' .. id,
             P .. 'eng:answered:' .. id)
  redis.call('ZREM', P .. 'surveys', id)
  return {'ok', sent}
end
return redis.error_reply('survey_def: unknown mode')
