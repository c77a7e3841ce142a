-- link_get: one tracked link for GET /v1/links/{code}.
-- Keys: P ln:{code} (read only).
-- ARGV: 1 prefix, 2 code.
-- Returns nil for an unknown or expired code, else {HGETALL fields, PTTL ms}.
local lk = ARGV[1] .. 'ln:' .. ARGV[2]
local h = redis.call('HGETALL', lk)
if #h == 0 then
  return false
end
return {h, redis.call('PTTL', lk)}
