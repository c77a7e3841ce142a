-- msg_get: a message and its history in one round trip.
-- ARGV: 1 prefix, 2 id.  Returns {} when unknown, else {HGETALL, LRANGE history}.
local mk = ARGV[1] .. 'm:' .. ARGV[2]
local m = redis.call('HGETALL', mk)
if #m == 0 then return {} end
return {m, redis.call('LRANGE', ARGV[1] .. 'mh:' .. ARGV[2], 0, -1)}
