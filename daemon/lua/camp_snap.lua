-- camp_snap: what a launch freezes into the campaign: the segment and template definitions.
-- ARGV: 1 prefix, 2 campaign id, 3 segment id ('' = inline), then template ids.
-- Returns {campaign json|false, state|false, segment json|false, template json|false...}.
local P = ARGV[1]
local f = redis.call('HMGET', P .. 'cp:' .. ARGV[2], 'json', 'state')
local out = {f[1], f[2], false}
if ARGV[3] ~= '' then out[3] = redis.call('HGET', P .. 'seg:' .. ARGV[3], 'json') end
for i = 4, #ARGV do out[#out + 1] = redis.call('HGET', P .. 'tpl:' .. ARGV[i], 'json') end
return out
