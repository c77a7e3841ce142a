-- contact_list: one page of contacts in id (creation) order.
-- ARGV: 1 prefix, 2 cursor ('' = from the start; exclusive), 3 limit.
-- Returns {next cursor or '', contact HGETALL...}.
local P, cur, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local from = '-'
if cur ~= '' then from = '(' .. cur end
local ids = redis.call('ZRANGEBYLEX', P .. 'contacts', from, '+', 'LIMIT', 0, limit + 1)
local out = {''}
local n = #ids
if n > limit then n = limit; out[1] = ids[limit] end
for i = 1, n do out[#out + 1] = redis.call('HGETALL', P .. 'c:' .. ids[i]) end
return out
