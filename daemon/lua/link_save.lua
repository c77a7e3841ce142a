-- link_save: save tracked links made while rendering messages, all or nothing.
-- Keys: P ln:{code} (hash: u url, m message, c contact, k campaign, v variant,
--       at created ms, n clicks; EXPIRE ttl), reads P c:{id} when asked to.
-- ARGV: 1 prefix, 2 now (ms), 3 ttl (s), 4 check contacts (1|0), then six per
--       link: code, url, message id, contact id, campaign id, variant ('' = none).
-- Returns {'ok', n} | {'collision', code} | {'no_contact', id}; nothing is
-- written unless 'ok'.
local P, now, ttl, chk = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local n = (#ARGV - 4) / 6
if n ~= math.floor(n) then
  return redis.error_reply('link_save: six arguments per link')
end
local seen = {}
for i = 0, n - 1 do
  local b = 5 + i * 6
  local code = ARGV[b]
  if seen[code] or redis.call('EXISTS', P .. 'ln:' .. code) == 1 then
    return {'collision', code}
  end
  seen[code] = true
  local cid = ARGV[b + 3]
  if chk == '1' and cid ~= '' and redis.call('EXISTS', P .. 'c:' .. cid) == 0 then
    return {'no_contact', cid}
  end
end
for i = 0, n - 1 do
  local b = 5 + i * 6
  local k = P .. 'ln:' .. ARGV[b]
  redis.call('HSET', k, 'u', ARGV[b + 1], 'm', ARGV[b + 2], 'c', ARGV[b + 3],
             'k', ARGV[b + 4], 'v', ARGV[b + 5], 'at', now, 'n', 0)
  redis.call('EXPIRE', k, ttl)
  if ARGV[b + 3] ~= '' then
    -- the erasure registry (contact_erase.lua): the link names the contact
    redis.call('SADD', P .. 'cx:' .. ARGV[b + 3], 'k ln:' .. ARGV[b])
  end
end
return {'ok', n}
