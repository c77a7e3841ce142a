/*
 * store.h - the Redis layout.  The store files (store.c, store_contacts.c,
 * store_messages.c) and the Lua scripts in daemon/lua/ are the only code
 * that knows key names; everything else asks the store.
 *
 * Keys (all under the configured prefix P):
 *   P c:{id}          hash   contact (name, lang, tz, prefs, tags, a:<kind>, x:<attr>, v, ...)
 *   P ix:{kind}:{addr} string reverse index address -> contact id
 *   P contacts        zset   every contact id (score 0, lexical = creation order)
 *   P ct:{id}, P tag:{t} sets contact's tags / tag's contacts
 *   P tl:{id}         stream contact timeline (capped)
 *   P m:{id}          hash   message (state, attempts, due, expires, lane, body, results)
 *   P mh:{id}         list   message history (JSON entries, last 64)
 *   P due             zset   scheduled message ids by due time (ms)
 *   P q:{lane}        stream ready messages per lane (sms, email, chat, preferred), group
 *                            "dispatch"
 *   P dlq             stream dead letters (m, reason, at)
 *   P idem:{tok}:{key} string idempotency key -> message id (TTL)
 *   P stats           hash   counters
 *   P await:{channel}  zset   sent messages awaiting a polled delivery status
 *   P inbound          stream raw inbound messages (audit, capped; also the IMAP poller's
 *                             refused messages, lua/imap.lua)
 *   P inb:{prov}:{id}  string inbound dedupe by provider message id (7 days): "contact action"
 *   P tgoff:{channel}  string getUpdates offset, raised only with the stored update (inbound.lua)
 *   P cp:{id}          hash   campaign (json, state, v, seed, fan_cursor, fan_done, snapshots,
 *                             token bucket); P camps zset of ids; P camps:active set
 *   P cph:{id}         list   campaign transitions (JSON)
 *   P cq:{id}          list   campaign recipients not yet made messages ("cid arm")
 *   P cpk:{id}         set    a paused campaign's parked messages
 *   P cs:{id}          hash   campaign counters, overall and "arm:field"
 *   P lc:{cid}         hash   a contact's last campaign touch (camp, var, msg, at, win)
 *   P eng:{what}:{id}  set    engagement (sent/replied/clicked/answered/entered) by contact
 *   P ln:{code}        hash   tracked link (u url, m msg, c contact, k camp, v var, at, n clicks,
 *                             f first click; TTL [links] ttl)
 *   P tpl:{id}         hash   template (json, v, updated); P templates zset of ids (score 0);
 *                             P tplver hash id -> last version (kept after a delete)
 *   P seg:{id}         hash   saved segment (json, v, updated); P segments zset of ids
 *                             (score 0); P segver hash id -> last version (kept after a delete)
 *   P pl:{cid}         stream points ledger (at, delta, balance, reason, ref, expires_at, note,
 *                             by; capped); P pt:{cid} zset open lots "entry|remaining" by expiry
 *   P ref:{code}       string referral code -> contact id; c:{cid} fields points, points_earned,
 *                             tier, last_purchase, signed_up, ref, referred_by, referrals
 *   P evi:{tok}:{key}  string POST /v1/events idempotency: the answer JSON (24 h)
 *   P pli:{tok}:{key}  string points spend/adjust idempotency: the answer JSON (24 h)
 *   P occ:{id}         hash   occasion rule (json, v, created, updated); P occasions zset of ids
 *   P occ:run:{id}, P occ:live:{id} hash  an occasion's operator run / periodic pass (state,
 *                             date, owner, lease, cursor, counters; lua/occ_run.lua)
 *   P idem:occ:{rule}:{cid}:{year} string  the occasion message sent (msg_create idempotency)
 *   P rf:{id}          hash   raffle (json, seed (secret until drawn), commit, state, rules,
 *                             counters, draw lease); P raffles zset of ids; P raffles:open set
 *   P rfv:{id} set unused codes; P rfu:{id} hash used code -> contact; P rfk:{id} hash entry
 *                             idempotency; P rfl:{id} stream entries (kept); P rfn:{id} /
 *                             P rfw:{id} hash contact -> entries / weight; P rfd:{id} hash the
 *                             draw record (kept)
 *   P svy:{id}         hash   survey (json, v, created, updated); P surveys zset of ids;
 *                             P svs:{id} hash counters; P svc:{id} / P svr:{id} zset contacts
 *                             sent to / who answered; P sva:{id}:{cid} hash answers;
 *                             P svt:{id}:{qid} stream free texts; P sv:{cid} hash the open
 *                             conversation (TTL); P svi:{prov}:{pid} string what an inbound
 *                             did (7 days)
 *   P team:{id}        hash   desk team (json, v, created, updated, nw/ne/nc notification
 *                             targets); P teams zset of ids; P desk:rules hash (json, v,
 *                             updated); P deskin stream the desk's inbox (replies to route,
 *                             lua/inbound.lua), P desk:incur string the last one it passed
 *   P tk:{id}          hash   ticket; P tkm:{id} list its conversation (JSON, last 500);
 *                             P tickets, P tks:{state}, P tkt:{team}, P tkt:{team}:{state} zsets
 *                             of ids; P tkc:{cid} string the contact's current ticket;
 *                             P tkfr:{team} zset first responses; P deskq zset / P deskqa
 *                             hash notifications due and their attempts (lua/desk_*.lua)
 *   P cm:{cid}         zset   the contact's message ids by creation (msg_create.lua; the oldest
 *                             pruned once retention removed them) for export and erasure
 *   P cx:{cid}         set    erasure registry (lua/contact_erase.lua, docs/privacy.md): what
 *                             else names the contact, as "k KEY" (DEL), "s KEY" (SREM cid),
 *                             "z KEY" (ZREM cid), "h KEY" (HDEL cid), each with an optional
 *                             "<TAB>MEMBER" (or FIELD) instead of cid, "x KEY<TAB>STREAM-ID",
 *                             "l KEY<TAB>VALUE" (LREM); KEY without P.
 *                             Every writer of a key that holds a contact id or address either
 *                             registers it here or adds a step to contact_erase.lua.
 *                             With [privacy] key_file, names, addresses and reply texts are
 *                             stored sealed (privacy.h): ix:{kind}:{sealed address} then.
 */
#ifndef CLUBD_STORE_H
#define CLUBD_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "redis.h"

#define STORE_GROUP "dispatch"

/* A growable argv for binary-safe Redis commands. */
struct argv {
	int n, cap;
	char **v;
	size_t *len;
};
void argv_init(struct argv *a);
void argv_free(struct argv *a);
void argv_add(struct argv *a, const char *s);
void argv_addn(struct argv *a, const char *p, size_t n);
void argv_addf(struct argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void argv_addll(struct argv *a, long long v);

struct store {
	struct redis *r; /* commands */
	char *prefix;
	int timeline_max;
};

/* Borrows r; copies prefix. */
struct store *store_new(struct redis *r, const char *prefix, int timeline_max);
void store_free(struct store *st);

enum store_script {
	SCRIPT_MSG_CREATE,
	SCRIPT_MSG_PROMOTE,
	SCRIPT_MSG_CLAIM,
	SCRIPT_MSG_SETTLE,
	SCRIPT_MSG_GET,
	SCRIPT_CONTACT_WRITE,
	SCRIPT_CONTACT_LIST,
	SCRIPT_CONTACT_DELETE,
	SCRIPT_MSG_REPORT,
	SCRIPT_DLQ_RETRY,
	SCRIPT_UNSUBSCRIBE,
	SCRIPT_INBOUND,
	SCRIPT_CAMP_WRITE,
	SCRIPT_CAMP_STATE,
	SCRIPT_CAMP_FAN,
	SCRIPT_CAMP_PUMP,
	SCRIPT_CAMP_RESERVE,
	SCRIPT_CAMP_SNAP,
	SCRIPT_TPL_WRITE,
	SCRIPT_TPL_LIST,
	SCRIPT_LINK_SAVE,
	SCRIPT_LINK_CLICK,
	SCRIPT_LINK_GET,
	SCRIPT_SEG_WRITE,
	SCRIPT_SEG_LIST,
	SCRIPT_POINTS_LEDGER,
	SCRIPT_OCC_WRITE,
	SCRIPT_OCC_GET,
	SCRIPT_OCC_RUN,
	SCRIPT_RAFFLE_WRITE,
	SCRIPT_RAFFLE_ENTER,
	SCRIPT_RAFFLE_READ,
	SCRIPT_SURVEY_DEF,
	SCRIPT_SURVEY_CONV,
	SCRIPT_SURVEY_READ,
	SCRIPT_CONTACT_ERASE,
	SCRIPT_DESK_WRITE,
	SCRIPT_DESK_TICKET,
	SCRIPT_DESK_READ,
	SCRIPT_IMAP, /* lua/imap.lua: the IMAP poller's audit of refused messages */
	SCRIPT__N
};
/* Run a script; the prefix is inserted as ARGV[1] (a must not hold it). */
void store_eval(struct store *st, enum store_script s, struct argv *a, redis_cb cb, void *arg);

/* A key under the prefix, e.g. store_key(st, "q:%s", lane).  Caller frees. */
char *store_key(const struct store *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reply helpers. */
const char *reply_str(const redisReply *r); /* string/status text or NULL */
/* Look up a field in an HGETALL-style array reply; NULL when absent. */
const char *hash_get(const redisReply *arr, const char *field);
int64_t hash_get_i64(const redisReply *arr, const char *field, int64_t def);

/* Contacts ---------------------------------------------------------------- */
void store_contact_get(struct store *st, const char *id, redis_cb cb, void *arg);
void store_contact_lookup(struct store *st, const char *kind, const char *addr, redis_cb cb,
                          void *arg);
void store_contact_delete(struct store *st, const char *id, redis_cb cb, void *arg);
void store_contact_list(struct store *st, const char *cursor, int limit, redis_cb cb, void *arg);
/* The API form of a contact from its HGETALL reply (new reference). */
json_t *store_contact_json(const redisReply *h);

/* Messages ---------------------------------------------------------------- */
void store_msg_get(struct store *st, const char *id, redis_cb cb, void *arg);
json_t *store_msg_json(const redisReply *h, const redisReply *history);
/* Create one message (msg_create.lua).  contact_id, or addr_kind + addr
 * (an unknown address becomes a lead contact).  lane is "sms", "email",
 * "chat" or "preferred".  fields: extra field/value pairs stored on the
 * message (text, subject, html, camp, var, ...).  idem: the full
 * idempotency key or NULL (ttl idem_ttl_s).  The new id is written to id
 * (ID_LEN + 1 bytes) before the call returns.  The reply is the script's:
 * {'ok', state, contact_id, created} | {'dup', id} | {'no_contact', id}. */
struct msg_new {
	const char *contact_id, *addr_kind, *addr;
	const char *lane, *channel, *category;
	const char *idem;
	long long idem_ttl_s;
	int64_t now, due, expires;
	const char *const *fields; /* pairs */
	size_t nfields;            /* number of strings (even) */
};
void store_msg_create(struct store *st, const struct msg_new *m, char *id, redis_cb cb, void *arg);
/* Campaigns (store_campaigns.c) ---------------------------------------------- */
void store_camp_get(struct store *st, const char *id, redis_cb cb, void *arg); /* HGETALL cp: */
/* HMGET cp:{id} name state created updated channel */
void store_camp_summary(struct store *st, const char *id, redis_cb cb, void *arg);
/* MULTI-free pipeline of HGETALL cs:{id} for each id; cb once per id, in order. */
void store_camp_stats(struct store *st, const char *id, redis_cb cb, void *arg);
void store_camp_history(struct store *st, const char *id, redis_cb cb, void *arg);
void store_camp_list(struct store *st, const char *cursor, int limit, redis_cb cb, void *arg);
void store_camp_active(struct store *st, redis_cb cb, void *arg); /* SMEMBERS camps:active */
/* SET cpf:{id} owner NX PX ms (or refresh when owner already holds it):
 * the fan-out lease.  Reply 1 = held. */
void store_camp_lease(struct store *st, const char *id, const char *owner, int64_t ms, redis_cb cb,
                      void *arg);
void store_camp_delete(struct store *st, const char *id, redis_cb cb, void *arg);

/* Templates (store_templates.c) --------------------------------------------- */
/* HMGET tpl:{id} json v: the reply is an array [json, v], both nil when the
 * template does not exist.  For every sender that renders a template. */
void store_template_get(struct store *st, const char *id, redis_cb cb, void *arg);
/* HMGET tpl:{id} json v updated: [json, v, updated] (nil when absent). */
void store_template_read(struct store *st, const char *id, redis_cb cb, void *arg);
/* Write a validated definition (json: its compact text).  create: {'ok', v}
 * or {'exists'}; replace: {'ok', v}, {'not_found'} or {'conflict', v} when
 * expect_v > 0 differs from the stored version; v grows on every write and
 * is never reused for the same id, even after a delete. */
void store_template_create(struct store *st, const char *id, const char *json, int64_t now,
                           redis_cb cb, void *arg);
void store_template_replace(struct store *st, const char *id, const char *json, long long expect_v,
                            int64_t now, redis_cb cb, void *arg);
/* {'ok', 0} or {'not_found'}. */
void store_template_delete(struct store *st, const char *id, redis_cb cb, void *arg);
/* A page in id order after cursor (exclusive; "" = start):
 * {next cursor or '', {id, json, v, updated}...}. */
void store_template_list(struct store *st, const char *cursor, int limit, redis_cb cb, void *arg);

/* Segments and the contact walk (store_segments.c) ----------------------------- */
/* Up to limit contact ids after `after` (exclusive; "" = from the start) in
 * id order: ZRANGEBYLEX contacts. */
void store_contact_ids(struct store *st, const char *after, size_t limit, redis_cb cb, void *arg);
/* HMGET c:{id} fields... (n > 0) or HGETALL c:{id} (n == 0). */
void store_contact_fields(struct store *st, const char *id, const char *const *fields, size_t n,
                          redis_cb cb, void *arg);
/* SMISMEMBER tag:{tag} ids...: an array of 0/1, one per id. */
void store_tag_members(struct store *st, const char *tag, const char *const *ids, size_t n,
                       redis_cb cb, void *arg);
/* SMISMEMBER eng:{what}:{ref} ids...: an array of 0/1, one per id. */
void store_eng_members(struct store *st, const char *what, const char *ref, const char *const *ids,
                       size_t n, redis_cb cb, void *arg);
/* The same writes, reads and pages as the template functions above, for
 * seg:{id} (seg_write.lua, seg_list.lua). */
void store_segment_create(struct store *st, const char *id, const char *json, int64_t now,
                          redis_cb cb, void *arg);
void store_segment_replace(struct store *st, const char *id, const char *json, long long expect_v,
                           int64_t now, redis_cb cb, void *arg);
void store_segment_delete(struct store *st, const char *id, redis_cb cb, void *arg);
/* HMGET seg:{id} json v updated: [json, v, updated] (nil when absent). */
void store_segment_read(struct store *st, const char *id, redis_cb cb, void *arg);
void store_segment_list(struct store *st, const char *cursor, int limit, redis_cb cb, void *arg);

/* Dead letters: a page of XRANGE after cursor (exclusive; "" = start), delete one. */
void store_dlq_list(struct store *st, const char *cursor, int limit, redis_cb cb, void *arg);
void store_dlq_delete(struct store *st, const char *entry, redis_cb cb, void *arg);
/* Create the consumer group on every lane (idempotent). */
void store_queue_init(struct store *st, const char *const *lanes, size_t n);

/* RFC 3339 UTC with milliseconds; out has at least 32 bytes. */
void fmt_time(int64_t ms, char *out, size_t n);
/* Parse RFC 3339 ("2026-11-23T10:00:00Z", fractional seconds, offsets). 0 or -1. */
int parse_time(const char *s, int64_t *ms);

#endif
