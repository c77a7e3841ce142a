-- survey_conv: survey conversations (daemon/survey_run.c; docs/surveys.md).  ARGV[2] is the mode.
-- Keys: P sv:{cid} hash, the open conversation (survey, q, retried, channel, mode, started,
--       ttl; PEXPIRE ttl, refreshed by every answer), P svy:{sid} (definition), P svs:{sid}
--       counters (sent, started, completed, skipped_open, {qid}:n, {qid}:invalid,
--       {qid}:v:{value}), P svc:{sid} zset contact -> sent at, P svr:{sid} zset contact ->
--       first reply at, P sva:{sid}:{cid} hash (channel, sent, replied, completed, {qid} value,
--       {qid}@ at), P svt:{sid}:{qid} stream free texts (c, t), P svi:{ref} string what an
--       inbound message did ("sid|outcome|q", dedupe TTL), P eng:answered:{sid},
--       P tl:{cid} (timeline entries of type answer), P c:{cid}.
--
-- 'start'  3 sid, 4 cid, 5 now, 6 ttl (ms), 7 channel, 8 mode (conv|email)
--          -> {'ok'} | {'already', resend (1: this survey's conversation is open and
--             unanswered: its first message may be created again)} | {'open', other survey}
--             | {'no_contact'} | {'gone'}
-- 'peek'   3 cid, 4 inbound ref ('' = none)
--          -> {what the ref did or '', conversation hash, survey id or '', survey json or '',
--              contact hash, answers hash}
-- 'answer' 3 cid, 4 inbound ref, 5 dedupe ttl (s), 6 now, 7 sid, 8 expected q,
--          9 expected retried, 10 expected started, 11 next q (-1 = complete), 12 next retried,
--          13 outcome ("sid|outcome|q"), 14 channel, 15 timeline max, 16.. records of three:
--          qid, kind (num|text|invalid), value.  The first answer of a contact (any,
--          even one re-asked) counts it as started.
--          -> {'ok', outcome} | {'dup', outcome} | {'stale'}
local P, mode = ARGV[1], ARGV[2]

if mode == 'start' then
  local sid, cid, now, ttl = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
  if redis.call('EXISTS', P .. 'svy:' .. sid) == 0 then return {'gone'} end
  if redis.call('EXISTS', P .. 'c:' .. cid) == 0 then return {'no_contact'} end
  local svk = P .. 'sv:' .. cid
  local open = redis.call('HGET', svk, 'survey')
  if redis.call('ZSCORE', P .. 'svc:' .. sid, cid) then
    local resend = 0
    if open == sid and redis.call('HEXISTS', P .. 'sva:' .. sid .. ':' .. cid, 'replied') == 0 then
      resend = 1
    end
    redis.call('HINCRBY', P .. 'svs:' .. sid, 'skipped_already', 1)
    return {'already', resend}
  end
  if open then
    redis.call('HINCRBY', P .. 'svs:' .. sid, 'skipped_open', 1)
    return {'open', open}
  end
  redis.call('HSET', svk, 'survey', sid, 'q', 0, 'retried', 0, 'channel', ARGV[7],
             'mode', ARGV[8], 'started', now, 'ttl', ttl)
  redis.call('PEXPIRE', svk, ttl)
  redis.call('ZADD', P .. 'svc:' .. sid, now, cid)
  redis.call('HSET', P .. 'sva:' .. sid .. ':' .. cid, 'channel', ARGV[7], 'sent', now)
  -- the erasure registry (contact_erase.lua): the conversation, the answers, the memberships
  redis.call('SADD', P .. 'cx:' .. cid, 'k sv:' .. cid, 'k sva:' .. sid .. ':' .. cid,
             'z svc:' .. sid, 'z svr:' .. sid)
  redis.call('HINCRBY', P .. 'svs:' .. sid, 'sent', 1)
  return {'ok'}
end

if mode == 'peek' then
  local cid, ref = ARGV[3], ARGV[4]
  local did = ''
  if ref ~= '' then did = redis.call('GET', P .. 'svi:' .. ref) or '' end
  local conv = redis.call('HGETALL', P .. 'sv:' .. cid)
  local sid = ''
  if did ~= '' then
    sid = string.match(did, '^([^|]*)|') or ''
  else
    sid = redis.call('HGET', P .. 'sv:' .. cid, 'survey') or ''
  end
  if sid == '' then return {did, conv, '', '', {}, {}} end
  local json = redis.call('HGET', P .. 'svy:' .. sid, 'json') or ''
  return {did, conv, sid, json, redis.call('HGETALL', P .. 'c:' .. cid),
          redis.call('HGETALL', P .. 'sva:' .. sid .. ':' .. cid)}
end

if mode ~= 'answer' then return redis.error_reply('survey_conv: unknown mode') end

local cid, ref, now, sid = ARGV[3], ARGV[4], ARGV[6], ARGV[7]
local rk = P .. 'svi:' .. ref
local did = redis.call('GET', rk)
if did then return {'dup', did} end
local svk = P .. 'sv:' .. cid
local cur = redis.call('HMGET', svk, 'survey', 'q', 'retried', 'started', 'ttl')
if cur[1] ~= sid or cur[2] ~= ARGV[8] or cur[3] ~= ARGV[9] or cur[4] ~= ARGV[10] then
  return {'stale'}
end
local sa, cs = P .. 'sva:' .. sid .. ':' .. cid, P .. 'svs:' .. sid
local tlmax, ch = tonumber(ARGV[15]), ARGV[14]
if redis.call('HSETNX', sa, 'replied', now) == 1 then
  redis.call('HINCRBY', cs, 'started', 1)
  redis.call('ZADD', P .. 'svr:' .. sid, now, cid)
  redis.call('SADD', P .. 'eng:answered:' .. sid, cid)
  redis.call('SADD', P .. 'cx:' .. cid, 's eng:answered:' .. sid)
end
for i = 16, #ARGV - 2, 3 do
  local qid, kind, value = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if redis.call('HEXISTS', sa, qid) == 0 then
    redis.call('HSET', sa, qid, value, qid .. '@', now)
    if kind == 'invalid' then
      redis.call('HINCRBY', cs, qid .. ':invalid', 1)
    else
      redis.call('HINCRBY', cs, qid .. ':n', 1)
      if kind == 'num' then
        redis.call('HINCRBY', cs, qid .. ':v:' .. value, 1)
      else
        local xid = redis.call('XADD', P .. 'svt:' .. sid .. ':' .. qid, 'MAXLEN', '~',
                               1000000, '*', 'c', cid, 't', value)
        redis.call('SADD', P .. 'cx:' .. cid, 'x svt:' .. sid .. ':' .. qid .. '\t' .. xid)
      end
    end
    if tlmax > 0 then
      redis.call('XADD', P .. 'tl:' .. cid, 'MAXLEN', '~', tlmax, '*', 'type', 'answer',
                 'survey', sid, 'question', qid, 'value', value, 'valid',
                 kind == 'invalid' and '0' or '1', 'channel', ch)
    end
  end
end
if ARGV[11] == '-1' then
  redis.call('DEL', svk)
  if redis.call('HSETNX', sa, 'completed', now) == 1 then
    redis.call('HINCRBY', cs, 'completed', 1)
  end
else
  redis.call('HSET', svk, 'q', ARGV[11], 'retried', ARGV[12])
  redis.call('PEXPIRE', svk, tonumber(cur[5]) or 172800000)
end
redis.call('SET', rk, ARGV[13], 'EX', ARGV[5])
return {'ok', ARGV[13]}
