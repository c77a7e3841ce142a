-- lib/desk.lua: a customer's reply added to a ticket's conversation, one copy for the scripts
-- that do it.  tools/embed-lua.sh puts this text where a script has the line `-- use: desk`:
-- desk_ticket.lua ('open': replies the desk routed to a ticket) and inbound.lua (a reply from a
-- contact whose current ticket is open or assigned is added by the router itself).
-- docs/desk.md describes tickets.
-- Keys: P tk:{id} hash the ticket, P tkm:{id} list its conversation (JSON, the last
--       DESK_CONV_MAX entries).
-- Defines (locals): DESK_CONV_MAX, desk_conv, desk_append.
local DESK_CONV_MAX = 500

-- One entry (a table, JSON-encoded) at the end of ticket tk's conversation.
local function desk_conv(P, tk, entry)
  local k = P .. 'tkm:' .. tk
  if redis.call('RPUSH', k, cjson.encode(entry)) > DESK_CONV_MAX then
    redis.call('LTRIM', k, -DESK_CONV_MAX, -1)
  end
end

-- The reply of audit entry aid, received at `at` (ms, a number), on ticket tk whose reply
-- count was n: the ticket's last reply and count, and the conversation.
local function desk_append(P, tk, n, now, at, ch, from, to, text, aid, prov, pid)
  redis.call('HSET', P .. 'tk:' .. tk, 'updated', now, 'last_in', string.format('%d', at),
             'channel', ch, 'from', from, 'to', to, 'last_text', text, 'n',
             string.format('%d', (tonumber(n) or 0) + 1))
  desk_conv(P, tk, {dir = 'in', at = at, channel = ch, text = text, inbound = aid,
                    provider = prov, provider_id = pid})
end
