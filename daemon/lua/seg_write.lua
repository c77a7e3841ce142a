-- seg_write: create, replace or delete a saved segment definition.
-- ARGV: 1 prefix, 2 mode ('create' | 'replace' | 'delete'), 3 id,
--       4 definition JSON, 5 now (ms), 6 expected version ('' = any; replace only).
-- Versions come from P segver (id -> last version), which outlives a delete,
-- so an (id, v) pair never names two different definitions.
-- Returns {'ok', v} | {'exists'} | {'not_found'} | {'conflict', current v}.
local P, mode, id = ARGV[1], ARGV[2], ARGV[3]
local k = P .. 'seg:' .. id
local exists = redis.call('EXISTS', k) == 1
if mode == 'delete' then
  if not exists then return {'not_found'} end
  redis.call('DEL', k)
  redis.call('ZREM', P .. 'segments', id)
  return {'ok', 0}
end
if mode == 'create' then
  if exists then return {'exists'} end
elseif mode == 'replace' then
  if not exists then return {'not_found'} end
  local cur = redis.call('HGET', k, 'v')
  if ARGV[6] ~= '' and cur ~= ARGV[6] then return {'conflict', tonumber(cur) or 0} end
else
  return redis.error_reply('seg_write: unknown mode')
end
local v = redis.call('HINCRBY', P .. 'segver', id, 1)
redis.call('HSET', k, 'json', ARGV[4], 'v', v, 'updated', ARGV[5])
redis.call('ZADD', P .. 'segments', 0, id)
return {'ok', v}
