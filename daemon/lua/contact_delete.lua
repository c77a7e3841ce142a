-- contact_delete: remove a contact, its reverse indexes, tag memberships, timeline and last
-- campaign touch / last message (lc:).
-- ARGV: 1 prefix, 2 id.  Returns 1 when deleted, 0 when unknown.
local P, id = ARGV[1], ARGV[2]
local ck = P .. 'c:' .. id
if redis.call('EXISTS', ck) == 0 then return 0 end
local h = redis.call('HGETALL', ck)
for i = 1, #h - 1, 2 do
  if string.sub(h[i], 1, 2) == 'a:' then
    local ix = P .. 'ix:' .. string.sub(h[i], 3) .. ':' .. h[i + 1]
    if redis.call('GET', ix) == id then redis.call('DEL', ix) end
  end
end
for _, t in ipairs(redis.call('SMEMBERS', P .. 'ct:' .. id)) do
  redis.call('SREM', P .. 'tag:' .. t, id)
end
redis.call('DEL', ck, P .. 'ct:' .. id, P .. 'tl:' .. id, P .. 'lc:' .. id)
redis.call('ZREM', P .. 'contacts', id)
return 1
