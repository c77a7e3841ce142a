-- camp_write: create a campaign or replace a draft's definition.
-- ARGV: 1 prefix, 2 mode (create|put), 3 id, 4 now, 5 definition JSON, 6 seed (create), then
--       field/value pairs copied onto the campaign (name, channel, category, rate, budget_c,
--       currency, win, start, lt, ld).
-- Returns {'ok', v} | {'exists'} | {'not_found'} | {'state', current}.
local P, mode, id, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local ck = P .. 'cp:' .. id
local st = redis.call('HGET', ck, 'state')
if mode == 'create' then
  if st then return {'exists'} end
  redis.call('HSET', ck, 'id', id, 'state', 'draft', 'seed', ARGV[6], 'created', now)
  redis.call('ZADD', P .. 'camps', 0, id)
  redis.call('RPUSH', P .. 'cph:' .. id, cjson.encode({at = tonumber(now), state = 'draft'}))
else
  if not st then return {'not_found'} end
  if st ~= 'draft' then return {'state', st} end
  redis.call('HDEL', ck, 'start', 'lt', 'ld', 'budget_c', 'currency', 'fwd', 'rec')
end
redis.call('HSET', ck, 'json', ARGV[5], 'updated', now)
for i = 7, #ARGV - 1, 2 do redis.call('HSET', ck, ARGV[i], ARGV[i + 1]) end
return {'ok', redis.call('HINCRBY', ck, 'v', 1)}
