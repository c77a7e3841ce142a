-- survey_read: survey results and the audiences a launch walks (daemon/store_surveys.c).
-- ARGV[2] is the mode.  Keys: see survey_conv.lua; P cp:{camp} and P eng:sent:{camp}
-- (campaigns, read only).
--
-- 'results' 3 sid, 4 free-text page size
--           -> {definition hash, counters hash, {{qid, {XRANGE entries}}...}} (hashes empty
--              when there is no survey; one entry per text question, a page of at most the
--              page size plus one, oldest first)
-- 'texts'   3 sid, 4 qid, 5 cursor (a stream id, exclusive; '' = oldest), 6 limit
--           -> {1, XRANGE entries (at most limit + 1)} | {0} (no survey)
-- 'rows'    3 sid, 4 offset, 5 limit -> {contacts who answered (total), {cid, answers hash}...}
--           in order of their first answer
-- 'sent'    3 campaign, 4 SSCAN cursor, 5 count -> {1, next cursor, {cid...}} | {0} (no campaign)
local P, mode = ARGV[1], ARGV[2]

if mode == 'results' then
  local sid, n = ARGV[3], tonumber(ARGV[4])
  local h = redis.call('HGETALL', P .. 'svy:' .. sid)
  local texts = {}
  local json = redis.call('HGET', P .. 'svy:' .. sid, 'json')
  local ok, def = pcall(cjson.decode, json or '')
  if ok and type(def) == 'table' and type(def.questions) == 'table' then
    for _, q in ipairs(def.questions) do
      if type(q) == 'table' and q.type == 'text' and type(q.id) == 'string' then
        texts[#texts + 1] = {q.id, redis.call('XRANGE', P .. 'svt:' .. sid .. ':' .. q.id,
                                              '-', '+', 'COUNT', n + 1)}
      end
    end
  end
  return {h, redis.call('HGETALL', P .. 'svs:' .. sid), texts}
elseif mode == 'texts' then
  local sid, qid, cur, n = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
  if redis.call('EXISTS', P .. 'svy:' .. sid) == 0 then return {0} end
  local from = '-'
  if cur ~= '' then from = '(' .. cur end
  return {1, redis.call('XRANGE', P .. 'svt:' .. sid .. ':' .. qid, from, '+', 'COUNT', n + 1)}
elseif mode == 'rows' then
  local sid, off, n = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
  local z = P .. 'svr:' .. sid
  local out = {redis.call('ZCARD', z)}
  for _, cid in ipairs(redis.call('ZRANGE', z, off, off + n - 1)) do
    out[#out + 1] = {cid, redis.call('HGETALL', P .. 'sva:' .. sid .. ':' .. cid)}
  end
  return out
elseif mode == 'sent' then
  local camp = ARGV[3]
  if redis.call('EXISTS', P .. 'cp:' .. camp) == 0 then return {0} end
  local r = redis.call('SSCAN', P .. 'eng:sent:' .. camp, ARGV[4], 'COUNT', ARGV[5])
  return {1, r[1], r[2]}
end
return redis.error_reply('survey_read: unknown mode')
