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
 *   P inbound          stream raw inbound messages (audit, capped)
 *   P inb:{prov}:{id}  string inbound dedupe by provider message id (7 days)
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
