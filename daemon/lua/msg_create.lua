-- msg_create: accept one message atomically.
-- ARGV: 1 prefix, 2 id, 3 now, 4 due, 5 expires, 6 lane, 7 contact id ('' = by address),
--       8 idempotency key ('' = none), 9 address kind, 10 address, 11 id for a new contact,
--       12 idempotency ttl seconds, 13.. field/value pairs stored on the message.
-- Returns {'ok', state, contact_id, created_contact(0|1)} | {'dup', id} | {'no_contact', id}.
local P, id, now, due = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local lane, cid, idem = ARGV[6], ARGV[7], ARGV[8]
if idem ~= '' then
  local prev = redis.call('GET', P .. 'idem:' .. idem)
  if prev then return {'dup', prev} end
end
local newc = 0
if cid == '' then
  local kind, addr = ARGV[9], ARGV[10]
  cid = redis.call('GET', P .. 'ix:' .. kind .. ':' .. addr)
  if not cid then
    cid = ARGV[11]
    newc = 1
    redis.call('HSET', P .. 'c:' .. cid, 'id', cid, 'a:' .. kind, addr, 'created', now,
               'updated', now, 'v', 1, 'lead', 1)
    redis.call('SET', P .. 'ix:' .. kind .. ':' .. addr, cid)
    redis.call('ZADD', P .. 'contacts', 0, cid)
  end
elseif redis.call('EXISTS', P .. 'c:' .. cid) == 0 then
  return {'no_contact', cid}
end
local state = 'scheduled'
if due <= tonumber(now) then state = 'ready' end
local mk = P .. 'm:' .. id
redis.call('HSET', mk, 'id', id, 'contact', cid, 'state', state, 'attempts', 0, 'created', now,
           'due', ARGV[4], 'expires', ARGV[5], 'lane', lane, unpack(ARGV, 13))
redis.call('RPUSH', P .. 'mh:' .. id, '{"at":' .. now .. ',"state":"' .. state .. '"}')
if state == 'ready' then
  redis.call('XADD', P .. 'q:' .. lane, '*', 'm', id)
else
  redis.call('ZADD', P .. 'due', ARGV[4], id)
end
if idem ~= '' then redis.call('SET', P .. 'idem:' .. idem, id, 'EX', ARGV[12]) end
-- the contact's messages and the idempotency keys that name it, for export and erasure
-- (contact_erase.lua); the oldest entries go once retention has removed their message
local cm = P .. 'cm:' .. cid
redis.call('ZADD', cm, now, id)
for _, o in ipairs(redis.call('ZRANGE', cm, 0, 1)) do
  if o ~= id and redis.call('EXISTS', P .. 'm:' .. o) == 0 then redis.call('ZREM', cm, o) end
end
if idem ~= '' and string.find(idem, cid, 1, true) then
  redis.call('SADD', P .. 'cx:' .. cid, 'k idem:' .. idem)
end
redis.call('HINCRBY', P .. 'stats', 'created', 1)
return {'ok', state, cid, newc}
