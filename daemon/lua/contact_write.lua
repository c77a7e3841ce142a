-- contact_write: create, patch or upsert one contact with its reverse indexes and tag sets.
-- ARGV: 1 prefix, 2 mode (create|patch|upsert), 3 id (new id for create/upsert), 4 now,
--       5.. field/value pairs.  A value of "\0" deletes the field.  Fields: name, first_name,
--       last_name, lang, tz, prefs, tags (JSON text), a:<kind> (address), x:<attr> (JSON value),
--       t (one tag; all of them replace the tag set when 'tags' is present).
-- Returns {'ok', id, created(0|1), contact HGETALL} | {'exists', id} | {'not_found', id} | {'taken', kind, owner}.
local P, mode, id, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local DEL = '\0'
local ck = P .. 'c:' .. id
local exists = redis.call('EXISTS', ck) == 1
local addrs, tags, has_tags, plain = {}, {}, false, {}
for i = 5, #ARGV - 1, 2 do
  local k, v = ARGV[i], ARGV[i + 1]
  if k == 't' then
    tags[#tags + 1] = v
  elseif string.sub(k, 1, 2) == 'a:' then
    addrs[string.sub(k, 3)] = v
  else
    if k == 'tags' then has_tags = true end
    plain[#plain + 1] = k; plain[#plain + 1] = v
  end
end
if mode == 'upsert' and not exists then
  for kind, v in pairs(addrs) do
    if v ~= DEL then
      local o = redis.call('GET', P .. 'ix:' .. kind .. ':' .. v)
      if o then id = o; ck = P .. 'c:' .. id; exists = true; break end
    end
  end
end
if mode == 'create' and exists then return {'exists', id} end
if mode == 'patch' and not exists then return {'not_found', id} end
for kind, v in pairs(addrs) do
  if v ~= DEL then
    local o = redis.call('GET', P .. 'ix:' .. kind .. ':' .. v)
    if o and o ~= id then return {'taken', kind, o} end
  end
end
for kind, v in pairs(addrs) do
  local old = redis.call('HGET', ck, 'a:' .. kind)
  if old and old ~= v then redis.call('DEL', P .. 'ix:' .. kind .. ':' .. old) end
  if v == DEL then
    redis.call('HDEL', ck, 'a:' .. kind)
  else
    redis.call('SET', P .. 'ix:' .. kind .. ':' .. v, id)
    redis.call('HSET', ck, 'a:' .. kind, v)
  end
end
if has_tags then
  for _, t in ipairs(redis.call('SMEMBERS', P .. 'ct:' .. id)) do
    redis.call('SREM', P .. 'tag:' .. t, id)
  end
  redis.call('DEL', P .. 'ct:' .. id)
  for _, t in ipairs(tags) do
    redis.call('SADD', P .. 'tag:' .. t, id)
    redis.call('SADD', P .. 'ct:' .. id, t)
  end
end
for i = 1, #plain - 1, 2 do
  if plain[i + 1] == DEL then
    redis.call('HDEL', ck, plain[i])
  else
    redis.call('HSET', ck, plain[i], plain[i + 1])
  end
end
local created = 0
if not exists then
  created = 1
  redis.call('HSET', ck, 'id', id, 'created', now)
  redis.call('ZADD', P .. 'contacts', 0, id)
end
redis.call('HSET', ck, 'updated', now)
redis.call('HDEL', ck, 'lead')
redis.call('HINCRBY', ck, 'v', 1)
return {'ok', id, created, redis.call('HGETALL', ck)}
