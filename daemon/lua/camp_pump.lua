-- camp_pump: turn the next recipients of a running campaign into messages.
-- ARGV: 1 prefix, 2 id, 3 now, 4 window (most messages of this campaign not yet ended),
--       5 message ttl ms, 6 retention seconds, then up to N fresh message ids.
-- A recipient becomes a small message record (contact, campaign, arm; no text: the
-- dispatcher renders it) in the same script that pops it, so a crash loses none.
-- The campaign's rate limit is a token bucket kept on the campaign, shared by every
-- instance.  When the list is empty, fan-out is done and every message has ended, the
-- campaign completes.
-- Returns {'ok', made, left} | {'state', current} | {'completed'} | {'run_done'} (recurring)
--       | {'wait', left}.
local P, id, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local window, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local ck, cs, cq = P .. 'cp:' .. id, P .. 'cs:' .. id, P .. 'cq:' .. id
local f = redis.call('HMGET', ck, 'state', 'rate', 'tb_tokens', 'tb_at', 'fan_done', 'channel',
                     'category', 'lt', 'ld', 'rec')
if f[1] ~= 'running' then return {'state', f[1] or ''} end
local c = redis.call('HMGET', cs, 'queued', 'done')
local inflight = (tonumber(c[1]) or 0) - (tonumber(c[2]) or 0)
local left = redis.call('LLEN', cq)
if left == 0 then
  if f[5] == '1' and inflight <= 0 and redis.call('SCARD', P .. 'cpk:' .. id) == 0 then
    -- a recurring campaign's run is over: the runner schedules the next one
    if f[10] == '1' then return {'run_done'} end
    redis.call('HSET', ck, 'state', 'completed', 'updated', ARGV[3], 'reason', '')
    redis.call('SREM', P .. 'camps:active', id)
    redis.call('RPUSH', P .. 'cph:' .. id,
               cjson.encode({at = now, state = 'completed', from = 'running', verb = 'complete'}))
    return {'completed'}
  end
  return {'wait', 0}
end
local n = #ARGV - 6
if window > 0 and window - inflight < n then n = window - inflight end
local rate = tonumber(f[2] or '0') or 0
local tokens = 0
if rate > 0 then
  tokens = tonumber(f[3] or '') or rate
  local at = tonumber(f[4] or '') or now
  if now > at then tokens = tokens + (now - at) * rate / 1000 end
  if tokens > rate then tokens = rate end
  if math.floor(tokens) < n then n = math.floor(tokens) end
end
if n <= 0 then
  if rate > 0 then redis.call('HSET', ck, 'tb_tokens', tostring(tokens), 'tb_at', ARGV[3]) end
  return {'wait', left}
end
local items = redis.call('LPOP', cq, n)
local lane = f[6]
local expires = now + ttl
for i, it in ipairs(items) do
  local sp = string.find(it, ' ', 1, true)
  local cid, arm = string.sub(it, 1, sp - 1), string.sub(it, sp + 1)
  local mid = ARGV[6 + i]
  local mk = P .. 'm:' .. mid
  redis.call('HSET', mk, 'id', mid, 'contact', cid, 'state', 'ready', 'attempts', 0,
             'created', ARGV[3], 'due', ARGV[3], 'expires', expires, 'lane', lane,
             'channel', lane, 'category', f[7], 'camp', id, 'var', arm)
  if f[8] then redis.call('HSET', mk, 'lt', f[8], 'ld', f[9] or '') end
  redis.call('RPUSH', P .. 'mh:' .. mid, '{"at":' .. ARGV[3] .. ',"state":"ready"}')
  redis.call('ZADD', P .. 'cm:' .. cid, now, mid) -- the contact's messages (erasure, export)
  redis.call('XADD', P .. 'q:' .. lane, '*', 'm', mid)
end
local made = #items
if rate > 0 then
  redis.call('HSET', ck, 'tb_tokens', tostring(tokens - made), 'tb_at', ARGV[3])
end
redis.call('HINCRBY', cs, 'queued', made)
redis.call('HINCRBY', P .. 'stats', 'created', made)
return {'ok', made, left - made}
