-- occ_get: occasion rules with their run records.
-- ARGV: 1 prefix, 2 id ('' = every rule, in id order, at most ARGV[3]), 3 most rules.
-- Returns a flat list of triples {rule HGETALL, run HGETALL, live HGETALL}; a
-- missing rule gives nothing (an empty list for one id).
local P, id = ARGV[1], ARGV[2]
local ids
if id ~= '' then ids = {id} else
  ids = redis.call('ZRANGEBYLEX', P .. 'occasions', '-', '+', 'LIMIT', 0, tonumber(ARGV[3]))
end
local out = {}
for _, i in ipairs(ids) do
  local h = redis.call('HGETALL', P .. 'occ:' .. i)
  if #h > 0 then
    out[#out + 1] = h
    out[#out + 1] = redis.call('HGETALL', P .. 'occ:run:' .. i)
    out[#out + 1] = redis.call('HGETALL', P .. 'occ:live:' .. i)
  end
end
return out
