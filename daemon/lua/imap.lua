-- imap: what the IMAP poller (daemon/imap_poll.c) records on its own: a message it will not
-- route (too large, unreadable, an automatic answer) is marked seen with an entry in the raw
-- inbound audit stream that lua/inbound.lua writes (docs/inbound.md).  ARGV[2] is the mode.
-- Keys: P inbound (capped audit stream), P stats.
--
-- 'refused' 3 now (ms), 4 provider id (the Message-ID, or 'uid:{uidvalidity}:{uid}:{mailbox}'),
--           5 mailbox, 6 uid, 7 size (bytes), 8 reason, 9 audit stream max
--           -> the audit entry id
local P, mode = ARGV[1], ARGV[2]
if mode ~= 'refused' then
  return redis.error_reply('imap: unknown mode')
end
local id = redis.call('XADD', P .. 'inbound', 'MAXLEN', '~', ARGV[9], '*', 'channel', 'email',
                      'provider', 'imap', 'provider_id', ARGV[4], 'transport', 'imap',
                      'received_at', ARGV[3], 'contact', '', 'action', 'refused',
                      'reason', ARGV[8], 'mailbox', ARGV[5], 'uid', ARGV[6], 'size', ARGV[7])
redis.call('HINCRBY', P .. 'stats', 'inbound:refused', 1)
return id
