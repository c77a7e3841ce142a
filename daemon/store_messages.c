/*
 * store_messages.c - message reads and the API form of a message.  State
 * changes go through lua/msg_*.lua only (create, promote, claim, settle).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "privacy.h"
#include "store.h"
#include "util.h"

void store_msg_get(struct store *st, const char *id, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, id);
	store_eval(st, SCRIPT_MSG_GET, &a, cb, arg);
	argv_free(&a);
}

void store_msg_create(struct store *st, const struct msg_new *m, char *id, redis_cb cb, void *arg)
{
	id_new(id, m->now);
	char new_contact[ID_LEN + 1];
	id_new(new_contact, m->now);
	struct argv a;
	argv_init(&a);
	argv_add(&a, id);
	argv_addll(&a, m->now);
	argv_addll(&a, m->due);
	argv_addll(&a, m->expires);
	argv_add(&a, m->lane);
	argv_add(&a, m->contact_id ? m->contact_id : "");
	argv_add(&a, m->idem ? m->idem : "");
	argv_add(&a, m->addr_kind ? m->addr_kind : "");
	privacy_argv_addr(&a, m->addr); /* sealed with [privacy] key_file */
	argv_add(&a, new_contact);
	argv_addll(&a, m->idem_ttl_s > 0 ? m->idem_ttl_s : 86400);
	argv_add(&a, "channel");
	argv_add(&a, m->channel);
	argv_add(&a, "category");
	argv_add(&a, m->category);
	for (size_t i = 0; i + 1 < m->nfields; i += 2) {
		argv_add(&a, m->fields[i]);
		/* bodies may carry names: sealed with [privacy] key_file */
		if (strcmp(m->fields[i], "text") == 0 || strcmp(m->fields[i], "subject") == 0 ||
		    strcmp(m->fields[i], "html") == 0)
			privacy_argv_text(&a, m->fields[i + 1]);
		else
			argv_add(&a, m->fields[i + 1]);
	}
	store_eval(st, SCRIPT_MSG_CREATE, &a, cb, arg);
	argv_free(&a);
}

static void set_str(json_t *o, const char *key, const char *v)
{
	json_object_set_new(o, key, v && *v ? json_string(v) : json_null());
}

static void set_time(json_t *o, const char *key, const redisReply *h, const char *field)
{
	int64_t ms = hash_get_i64(h, field, -1);
	if (ms < 0) {
		json_object_set_new(o, key, json_null());
		return;
	}
	char t[40];
	fmt_time(ms, t, sizeof t);
	json_object_set_new(o, key, json_string(t));
}

json_t *store_msg_json(const redisReply *h, const redisReply *history)
{
	privacy_open_reply(h); /* "to" is sealed with [privacy] key_file */
	json_t *o = json_object();
	set_str(o, "id", hash_get(h, "id"));
	set_str(o, "contact_id", hash_get(h, "contact"));
	set_str(o, "channel", hash_get(h, "channel"));
	set_str(o, "category", hash_get(h, "category"));
	set_str(o, "state", hash_get(h, "state"));
	json_object_set_new(o, "attempts", json_integer(hash_get_i64(h, "attempts", 0)));
	set_time(o, "created_at", h, "created");
	set_time(o, "due_at", h, "due");
	set_time(o, "expires_at", h, "expires");
	set_time(o, "sent_at", h, "sent_at");
	set_str(o, "sent_channel", hash_get(h, "sent_channel"));
	set_str(o, "to", hash_get(h, "to"));
	set_str(o, "provider_id", hash_get(h, "provider_id"));
	if (hash_get(h, "smsc_id"))
		set_str(o, "smsc_id", hash_get(h, "smsc_id"));
	set_str(o, "last_error", hash_get(h, "last_error"));
	set_str(o, "subject", hash_get(h, "subject"));
	set_str(o, "text", hash_get(h, "text"));
	int64_t seg = hash_get_i64(h, "segments", 0);
	if (seg > 0)
		json_object_set_new(o, "segments", json_integer(seg));
	int64_t cost = hash_get_i64(h, "cost_micros", 0);
	if (cost > 0)
		json_object_set_new(o, "cost", json_real((double)cost / 1e6));
	json_t *hist = json_array();
	for (size_t i = 0; history && history->type == REDIS_REPLY_ARRAY && i < history->elements;
	     i++) {
		const char *s = reply_str(history->element[i]);
		json_t *e = s ? json_loads(s, 0, NULL) : NULL;
		if (!e)
			continue;
		json_t *at = json_object_get(e, "at");
		if (json_is_integer(at)) {
			char t[40];
			fmt_time(json_integer_value(at), t, sizeof t);
			json_object_set_new(e, "at", json_string(t));
		}
		json_array_append_new(hist, e);
	}
	json_object_set_new(o, "history", hist);
	return o;
}

void store_dlq_list(struct store *st, const char *cursor, int limit, redis_cb cb, void *arg)
{
	char *k = store_key(st, "dlq");
	char from[80];
	snprintf(from, sizeof from, "%s%s", cursor && *cursor ? "(" : "",
	         cursor && *cursor ? cursor : "-");
	redis_cmdf(st->r, cb, arg, "XRANGE %s %s + COUNT %d", k, from, limit);
	free(k);
}

void store_dlq_delete(struct store *st, const char *entry, redis_cb cb, void *arg)
{
	char *k = store_key(st, "dlq");
	redis_cmdf(st->r, cb, arg, "XDEL %s %s", k, entry);
	free(k);
}
