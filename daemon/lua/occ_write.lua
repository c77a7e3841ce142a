-- occ_write: create, replace or delete one occasion rule (P occ:{id}, P occasions).
-- ARGV: 1 prefix, 2 mode (create|put|delete), 3 id, 4 now, 5 canonical JSON ('' for delete),
--       6 expected version ('' = any), 7 most rules (create).
-- Deleting also drops the rule's run records (occ:run:{id}, occ:live:{id}); the
-- idempotency keys of what it sent stay until they expire, so a rule re-created
-- under the same id never sends twice for the same (contact, year).
-- Returns {'ok', v, created, updated} | {'exists'} | {'not_found'} | {'conflict', v} | {'full', n}.
local P, mode, id, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local k = P .. 'occ:' .. id
local v = redis.call('HGET', k, 'v')
if mode == 'create' then
  if v then return {'exists'} end
  local n = redis.call('ZCARD', P .. 'occasions')
  if n >= tonumber(ARGV[7]) then return {'full', n} end
  redis.call('HSET', k, 'json', ARGV[5], 'v', 1, 'created', now, 'updated', now)
  redis.call('ZADD', P .. 'occasions', 0, id)
  return {'ok', 1, now, now}
end
if not v then return {'not_found'} end
if ARGV[6] ~= '' and ARGV[6] ~= v then return {'conflict', v} end
if mode == 'delete' then
  redis.call('DEL', k, P .. 'occ:run:' .. id, P .. 'occ:live:' .. id)
  redis.call('ZREM', P .. 'occasions', id)
  return {'ok', v, '', now}
end
redis.call('HSET', k, 'json', ARGV[5], 'updated', now)
local nv = redis.call('HINCRBY', k, 'v', 1)
return {'ok', nv, redis.call('HGET', k, 'created'), now}
