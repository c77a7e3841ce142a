-- desk_write: the complaints desk's teams and routing rules (daemon/store_desk.c,
-- docs/desk.md).  ARGV[2] is the mode.
-- Keys: P team:{id} hash (json, v, created, updated, and the notification targets nw webhook,
--       ne email, nc chat as plain fields for lua/desk_ticket.lua); P teams zset of ids
--       (score 0); P desk:rules hash (json, v, updated).
--
-- 'team_create' 3 now, 4 id, 5 json, 6 webhook, 7 email, 8 chat ('' = none)
--               -> {'ok', v} | {'exists'}
-- 'team_put'    the same                          -> {'ok', v} | {'not_found'}
-- 'team_delete' 3 id -> {'ok'} | {'not_found'} | {'in_use', 'rules[N]' | 'default_team'}
-- 'team_get'    3 id -> the team's hash (HGETALL form; empty when none)
-- 'team_list'   3 cursor (exclusive, '' = start), 4 limit -> {next cursor or '', {hash}...}
-- 'rules_put'   3 now, 4 json, 5.. team ids named -> {'ok', v} | {'unknown_team', id}
-- 'rules_get'   -> {json or '', v or '', updated or ''}
local P, mode = ARGV[1], ARGV[2]

local function team_write(create)
  local now, id = ARGV[3], ARGV[4]
  local k = P .. 'team:' .. id
  local exists = redis.call('EXISTS', k) == 1
  if create and exists then return {'exists'} end
  if not create and not exists then return {'not_found'} end
  if create then
    redis.call('HSET', k, 'created', now)
    redis.call('ZADD', P .. 'teams', 0, id)
  end
  redis.call('HDEL', k, 'nw', 'ne', 'nc')
  redis.call('HSET', k, 'id', id, 'json', ARGV[5], 'updated', now)
  local targets = {nw = ARGV[6], ne = ARGV[7], nc = ARGV[8]}
  for f, v in pairs(targets) do
    if v ~= '' then redis.call('HSET', k, f, v) end
  end
  return {'ok', redis.call('HINCRBY', k, 'v', 1)}
end

if mode == 'team_create' then
  return team_write(true)
elseif mode == 'team_put' then
  return team_write(false)
elseif mode == 'team_delete' then
  local id = ARGV[3]
  local k = P .. 'team:' .. id
  if redis.call('EXISTS', k) == 0 then return {'not_found'} end
  local rj = redis.call('HGET', P .. 'desk:rules', 'json')
  if rj then
    local ok, r = pcall(cjson.decode, rj)
    if ok and type(r) == 'table' then
      if r.default_team == id then return {'in_use', 'default_team'} end
      if type(r.rules) == 'table' then
        for i, rule in ipairs(r.rules) do
          if type(rule) == 'table' and rule.team == id then
            return {'in_use', 'rules[' .. (i - 1) .. ']'}
          end
        end
      end
    end
  end
  redis.call('DEL', k)
  redis.call('ZREM', P .. 'teams', id)
  return {'ok'}
elseif mode == 'team_get' then
  return redis.call('HGETALL', P .. 'team:' .. ARGV[3])
elseif mode == 'team_list' then
  local cursor, limit = ARGV[3], tonumber(ARGV[4])
  local from = '-'
  if cursor ~= '' then from = '(' .. cursor end
  local ids = redis.call('ZRANGEBYLEX', P .. 'teams', from, '+', 'LIMIT', 0, limit + 1)
  local out, nxt = {}, ''
  for i, id in ipairs(ids) do
    if i > limit then
      nxt = ids[limit]
      break
    end
    out[#out + 1] = redis.call('HGETALL', P .. 'team:' .. id)
  end
  return {nxt, out}
elseif mode == 'rules_put' then
  for i = 5, #ARGV do
    if redis.call('EXISTS', P .. 'team:' .. ARGV[i]) == 0 then return {'unknown_team', ARGV[i]} end
  end
  local k = P .. 'desk:rules'
  redis.call('HSET', k, 'json', ARGV[4], 'updated', ARGV[3])
  return {'ok', redis.call('HINCRBY', k, 'v', 1)}
elseif mode == 'rules_get' then
  local h = redis.call('HMGET', P .. 'desk:rules', 'json', 'v', 'updated')
  return {h[1] or '', h[2] or '', h[3] or ''}
end
return redis.error_reply('desk_write: unknown mode')
