-- tpl_list: one page of templates in id order.
-- ARGV: 1 prefix, 2 cursor ('' = from the start; exclusive), 3 limit.
-- Returns {next cursor or '', {id, json, v, updated}...}.
local P, cur, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local from = '-'
if cur ~= '' then from = '(' .. cur end
local ids = redis.call('ZRANGEBYLEX', P .. 'templates', from, '+', 'LIMIT', 0, limit + 1)
local out = {''}
local n = #ids
if n > limit then n = limit; out[1] = ids[limit] end
for i = 1, n do
  local h = redis.call('HMGET', P .. 'tpl:' .. ids[i], 'json', 'v', 'updated')
  if h[1] then out[#out + 1] = {ids[i], h[1], h[2], h[3]} end
end
return out
