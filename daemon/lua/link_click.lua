-- link_click: a click on a tracked link (GET /l/{code}).
-- Keys: P ln:{code} (read; n clicks and f first click written),
--       P cs:{camp} (clicks, {var}:clicks, clickers, {var}:clickers),
--       P eng:clicked:{camp} (set of contact ids), P tl:{cid} (timeline),
--       reads P c:{cid}.
-- Only keys named by the stored link are written: the caller checked the code
-- (10 of [A-Za-z0-9]) and the link's ids were checked when it was saved.
-- A contact that no longer exists (erased) gets no timeline entry and is not
-- counted as a clicker; the click itself still counts.
-- ARGV: 1 prefix, 2 code, 3 now (ms), 4 count (1 records the click, 0 only
--       looks the link up: HEAD requests, link-preview bots), 5 timeline max.
-- Returns nil for an unknown or expired code, else {url, counted (0|1),
--         new clicker (0|1)}.
local P, code, now, count, tlmax = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local lk = P .. 'ln:' .. code
local f = redis.call('HMGET', lk, 'u', 'm', 'c', 'k', 'v')
local url = f[1]
if not url then
  return false
end
if count ~= '1' then
  return {url, 0, 0}
end
local msg, cid, camp, var = f[2] or '', f[3] or '', f[4] or '', f[5] or ''
redis.call('HINCRBY', lk, 'n', 1)
redis.call('HSETNX', lk, 'f', now)
local known = cid ~= '' and redis.call('EXISTS', P .. 'c:' .. cid) == 1
local fresh = 0
if camp ~= '' then
  local cs = P .. 'cs:' .. camp
  redis.call('HINCRBY', cs, 'clicks', 1)
  if var ~= '' then
    redis.call('HINCRBY', cs, var .. ':clicks', 1)
  end
  if known and redis.call('SADD', P .. 'eng:clicked:' .. camp, cid) == 1 then
    fresh = 1
    redis.call('HINCRBY', cs, 'clickers', 1)
    if var ~= '' then
      redis.call('HINCRBY', cs, var .. ':clickers', 1)
    end
  end
end
if known and tlmax > 0 then
  local e = {'type', 'click', 'link', code, 'url', url}
  if msg ~= '' then
    e[#e + 1] = 'm'
    e[#e + 1] = msg
  end
  if camp ~= '' then
    e[#e + 1] = 'camp'
    e[#e + 1] = camp
  end
  if var ~= '' then
    e[#e + 1] = 'var'
    e[#e + 1] = var
  end
  redis.call('XADD', P .. 'tl:' .. cid, 'MAXLEN', '~', tlmax, '*', unpack(e))
end
return {url, 1, fresh}
