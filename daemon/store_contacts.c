/*
 * store_contacts.c - contact reads and deletes, and the API form of a contact
 * hash.  Writes go through lua/contact_write.lua, whose field/value pairs
 * api_contacts.c builds after validation.  Knows the c:, ix:, contacts keys.
 * With [privacy] key_file the stored names and addresses are sealed
 * (privacy.h): lookups seal the address, reads open the reply.
 */
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "privacy.h"
#include "store.h"
#include "util.h"

void store_contact_get(struct store *st, const char *id, redis_cb cb, void *arg)
{
	char *k = store_key(st, "c:%s", id);
	privacy_wrap_cb(&cb, &arg); /* names and addresses opened for every reader */
	redis_cmdf(st->r, cb, arg, "HGETALL %s", k);
	free(k);
}

void store_contact_lookup(struct store *st, const char *kind, const char *addr, redis_cb cb,
                          void *arg)
{
	char *stored = privacy_seal_addr(addr);
	char *k = store_key(st, "ix:%s:%s", kind, stored);
	redis_cmdf(st->r, cb, arg, "GET %s", k);
	free(k);
	free(stored);
}

void store_contact_delete(struct store *st, const char *id, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, id);
	store_eval(st, SCRIPT_CONTACT_DELETE, &a, cb, arg);
	argv_free(&a);
}

void store_contact_list(struct store *st, const char *cursor, int limit, redis_cb cb, void *arg)
{
	struct argv a;
	argv_init(&a);
	argv_add(&a, cursor ? cursor : "");
	argv_addll(&a, limit);
	store_eval(st, SCRIPT_CONTACT_LIST, &a, cb, arg);
	argv_free(&a);
}

static json_t *json_or(const char *text, json_t *def)
{
	if (!text)
		return def;
	json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
	if (!j)
		return def;
	json_decref(def);
	return j;
}

json_t *store_contact_json(const redisReply *h)
{
	static const char *const plain[] = {"id", "name", "first_name", "last_name", "lang", "tz"};
	privacy_open_reply(h); /* in place; nothing when already open or plain */
	json_t *o = json_object();
	for (size_t i = 0; i < ARRAY_SIZE(plain); i++) {
		const char *v = hash_get(h, plain[i]);
		json_object_set_new(o, plain[i], v ? json_string(v) : json_null());
	}
	json_t *addrs = json_object(), *attrs = json_object();
	for (size_t i = 0; h && i + 1 < h->elements; i += 2) {
		const char *k = reply_str(h->element[i]), *v = reply_str(h->element[i + 1]);
		if (!k || !v)
			continue;
		if (strncmp(k, "a:", 2) == 0)
			json_object_set_new(addrs, k + 2, json_string(v));
		else if (strncmp(k, "x:", 2) == 0)
			json_object_set_new(attrs, k + 2, json_or(v, json_null()));
	}
	json_object_set_new(o, "addresses", addrs);
	json_object_set_new(o, "tags", json_or(hash_get(h, "tags"), json_array()));
	json_object_set_new(o, "attrs", attrs);
	json_object_set_new(o, "preferences", json_or(hash_get(h, "prefs"), json_object()));
	if (hash_get(h, "lead"))
		json_object_set_new(o, "lead", json_true());
	char t[40];
	fmt_time(hash_get_i64(h, "created", 0), t, sizeof t);
	json_object_set_new(o, "created_at", json_string(t));
	fmt_time(hash_get_i64(h, "updated", 0), t, sizeof t);
	json_object_set_new(o, "updated_at", json_string(t));
	return o;
}
