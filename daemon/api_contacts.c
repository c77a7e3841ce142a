/*
 * api_contacts.c - /v1/contacts: validation of contact input and the
 * handlers for create, get, list/lookup, patch, delete and NDJSON bulk
 * upsert.  One validator (api_contact_pairs, api_contacts.h) serves every
 * write path, so a field means the same thing in POST, PATCH, bulk and the
 * CSV/NDJSON import (api_import.c).  Writes go through
 * lua/contact_write.lua; this file knows no key names.
 *
 * Limits: names 200 bytes, 64 tags of 64 bytes, 64 attrs (keys 64 bytes,
 * string values 1024 bytes), bulk lines 64 KiB, 64 bulk writes in flight
 * per request (the upload is paused beyond that), 1000 errors listed.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "api_contacts.h"
#include "api_privacy.h"
#include "app.h"
#include "log.h"
#include "prefs.h"
#include "privacy.h"
#include "text.h"
#include "tz.h"
#include "util.h"

#define NAME_MAX_BYTES   200
#define TAGS_MAX         64
#define TAG_MAX_BYTES    64
#define ATTRS_MAX        64
#define ATTR_KEY_MAX     64
#define ATTR_VALUE_MAX   1024
#define BULK_LINE_MAX    65536
#define BULK_PENDING_MAX 64
#define BULK_ERRORS_MAX  1000

static const char DEL_VALUE[1] = {'\0'};

static int verr_set(struct contact_verr *e, const char *code, const char *field, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));

static int verr_set(struct contact_verr *e, const char *code, const char *field, const char *fmt,
                    ...)
{
	e->code = code;
	snprintf(e->field, sizeof e->field, "%s", field ? field : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->reason, sizeof e->reason, fmt, ap);
	va_end(ap);
	return -1;
}

static int valid_lang(const char *s)
{
	size_t n = strlen(s), i = 0;
	if (n < 2 || n > 35)
		return 0;
	while (i < n && islower((unsigned char)s[i]))
		i++;
	if (i < 2 || i > 3)
		return 0;
	while (i < n) {
		if (s[i++] != '-')
			return 0;
		size_t k = 0;
		while (i < n && isalnum((unsigned char)s[i]))
			i++, k++;
		if (k < 1 || k > 8)
			return 0;
	}
	return 1;
}

static int valid_attr_key(const char *k)
{
	size_t n = strlen(k);
	if (n < 1 || n > ATTR_KEY_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)k[i]) && !strchr("_.-", k[i]))
			return 0;
	return 1;
}

/* seal: a name, stored sealed with [privacy] key_file (privacy.h) */
static int add_text_field(struct argv *a, const char *name, const json_t *v, int patch, size_t max,
                          int seal, struct contact_verr *e)
{
	if (json_is_null(v)) {
		if (patch) {
			argv_add(a, name);
			argv_addn(a, DEL_VALUE, 1);
		}
		return 0;
	}
	if (!json_is_string(v))
		return verr_set(e, "invalid_field", name, "must be a string");
	const char *s = json_string_value(v);
	if (json_string_length(v) > max)
		return verr_set(e, "invalid_field", name, "longer than %zu bytes", max);
	if (strlen(s) != json_string_length(v) || text_has_ctl(s, 0))
		return verr_set(e, "invalid_field", name, "control characters are not allowed");
	argv_add(a, name);
	if (seal)
		privacy_argv_text(a, s);
	else
		argv_add(a, s);
	return 0;
}

static int add_addresses(struct argv *a, const json_t *v, int patch, const struct config *cfg,
                         struct contact_verr *e)
{
	if (!json_is_object(v))
		return verr_set(e, "invalid_field", "addresses", "must be an object");
	const char *k;
	json_t *x;
	json_object_foreach((json_t *)v, k, x)
	{
		char field[64];
		snprintf(field, sizeof field, "addresses.%.40s", k);
		int kind = addr_kind_parse(k);
		if (kind < 0)
			return verr_set(e, "invalid_field", field,
			                "unknown channel (sms, email, chat)");
		char key[16];
		snprintf(key, sizeof key, "a:%s", k);
		if (json_is_null(x)) {
			if (patch) {
				argv_add(a, key);
				argv_addn(a, DEL_VALUE, 1);
			}
			continue;
		}
		if (!json_is_string(x))
			return verr_set(e, "invalid_field", field, "must be a string");
		char out[ADDR_MAX + 1];
		const char *why = "invalid";
		if (strlen(json_string_value(x)) != json_string_length(x) ||
		    addr_normalize((enum addr_kind)kind, json_string_value(x),
		                   cfg->contacts_default_country, out, &why) < 0)
			return verr_set(e, "invalid_field", field, "%s", why);
		argv_add(a, key);
		privacy_argv_addr(a, out);
	}
	return 0;
}

static int add_tags(struct argv *a, const json_t *v, struct contact_verr *e)
{
	if (json_is_null(v))
		v = NULL;
	else if (!json_is_array(v))
		return verr_set(e, "invalid_field", "tags", "must be an array of strings");
	if (v && json_array_size(v) > TAGS_MAX)
		return verr_set(e, "invalid_field", "tags", "at most %d tags", TAGS_MAX);
	json_t *clean = json_array();
	size_t i;
	json_t *t;
	json_array_foreach(v, i, t)
	{
		const char *s = json_string_value(t);
		if (!s || json_string_length(t) < 1 || json_string_length(t) > TAG_MAX_BYTES ||
		    strlen(s) != json_string_length(t) || text_has_ctl(s, 0)) {
			json_decref(clean);
			char field[32];
			snprintf(field, sizeof field, "tags[%zu]", i);
			return verr_set(e, "invalid_field", field,
			                "a tag is a string of 1..%d bytes without control "
			                "characters",
			                TAG_MAX_BYTES);
		}
		int dup = 0;
		for (size_t k = 0; k < json_array_size(clean); k++)
			dup |= strcmp(json_string_value(json_array_get(clean, k)), s) == 0;
		if (!dup)
			json_array_append_new(clean, json_string(s));
	}
	char *txt = json_dumps(clean, JSON_COMPACT);
	argv_add(a, "tags");
	argv_add(a, txt);
	free(txt);
	json_array_foreach(clean, i, t)
	{
		argv_add(a, "t");
		argv_add(a, json_string_value(t));
	}
	json_decref(clean);
	return 0;
}

static int add_attrs(struct argv *a, const json_t *v, int patch, struct contact_verr *e)
{
	if (!json_is_object(v))
		return verr_set(e, "invalid_field", "attrs", "must be an object");
	if (json_object_size(v) > ATTRS_MAX)
		return verr_set(e, "invalid_field", "attrs", "at most %d attributes", ATTRS_MAX);
	const char *k;
	json_t *x;
	json_object_foreach((json_t *)v, k, x)
	{
		char field[96];
		snprintf(field, sizeof field, "attrs.%.64s", k);
		if (!valid_attr_key(k))
			return verr_set(e, "invalid_field", field,
			                "keys are 1..64 of A-Z a-z 0-9 _ . -");
		char key[ATTR_KEY_MAX + 3];
		snprintf(key, sizeof key, "x:%s", k);
		if (json_is_null(x)) {
			if (patch) {
				argv_add(a, key);
				argv_addn(a, DEL_VALUE, 1);
			}
			continue;
		}
		if (json_is_string(x)) {
			if (json_string_length(x) > ATTR_VALUE_MAX ||
			    strlen(json_string_value(x)) != json_string_length(x) ||
			    text_has_ctl(json_string_value(x), 1))
				return verr_set(e, "invalid_field", field,
				                "strings are up to %d bytes of text",
				                ATTR_VALUE_MAX);
		} else if (!json_is_number(x) && !json_is_boolean(x)) {
			return verr_set(e, "invalid_field", field,
			                "must be a string, number or boolean");
		}
		char *txt = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY);
		argv_add(a, key);
		argv_add(a, txt);
		free(txt);
	}
	return 0;
}

/*
 * Validate a contact object and append contact_write field/value pairs.
 * allow_id: bulk lines may carry "id" (the caller reads it).
 */
int api_contact_pairs(const json_t *o, int patch, int allow_id, const struct config *cfg,
                      struct argv *a, struct contact_verr *e)
{
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)o, k, v)
	{
		int rc = 0;
		if (strcmp(k, "name") == 0 || strcmp(k, "first_name") == 0 ||
		    strcmp(k, "last_name") == 0) {
			rc = add_text_field(a, k, v, patch, NAME_MAX_BYTES, 1, e);
		} else if (strcmp(k, "lang") == 0) {
			if (!json_is_null(v) &&
			    (!json_is_string(v) || !valid_lang(json_string_value(v))))
				return verr_set(e, "invalid_field", "lang",
				                "a language tag such as fa, en or fa-IR");
			rc = add_text_field(a, k, v, patch, 35, 0, e);
		} else if (strcmp(k, "tz") == 0) {
			if (!json_is_null(v) &&
			    (!json_is_string(v) || !tz_valid(json_string_value(v))))
				return verr_set(e, "invalid_field", "tz",
				                "an IANA time zone such as Asia/Tehran");
			rc = add_text_field(a, k, v, patch, 64, 0, e);
		} else if (strcmp(k, "addresses") == 0) {
			rc = add_addresses(a, v, patch, cfg, e);
		} else if (strcmp(k, "tags") == 0) {
			rc = add_tags(a, v, e);
		} else if (strcmp(k, "attrs") == 0) {
			rc = add_attrs(a, v, patch, e);
		} else if (strcmp(k, "preferences") == 0) {
			if (json_is_null(v)) {
				argv_add(a, "prefs");
				argv_addn(a, DEL_VALUE, 1);
				continue;
			}
			struct prefs p;
			const char *field = "preferences", *reason = "invalid";
			if (!json_is_object(v) || prefs_parse(v, &p, &field, &reason) < 0)
				return verr_set(e, "invalid_field", field, "%s", reason);
			json_t *canon = prefs_to_json(&p);
			char *txt = json_dumps(canon, JSON_COMPACT);
			json_decref(canon);
			argv_add(a, "prefs");
			argv_add(a, txt);
			free(txt);
		} else if (strcmp(k, "id") == 0 && allow_id) {
			continue;
		} else if (strcmp(k, "id") == 0 || strcmp(k, "created_at") == 0 ||
		           strcmp(k, "updated_at") == 0 || strcmp(k, "lead") == 0) {
			return verr_set(e, "invalid_field", k, "read-only");
		} else {
			char field[64];
			snprintf(field, sizeof field, "%.60s", k);
			return verr_set(e, "invalid_field", field, "unknown field");
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Write results -------------------------------------------------------- */

struct write_ctx {
	struct api_req *rq;
	unsigned ok_status; /* 201 for create, 200 otherwise */
};

static void on_written(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct write_ctx *w = arg;
	struct api_req *rq = w->rq;
	if (!api_reply_redis_failure(rq, rep)) {
		const char *st = rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
		                     ? reply_str(rep->element[0])
		                     : NULL;
		if (st && strcmp(st, "ok") == 0 && rep->elements >= 4) {
			api_reply_json(rq, w->ok_status, store_contact_json(rep->element[3]));
		} else if (st && strcmp(st, "taken") == 0 && rep->elements >= 2) {
			char field[32];
			snprintf(field, sizeof field, "addresses.%s", reply_str(rep->element[1]));
			api_reply_error(rq, 409, "conflict", field,
			                "this address belongs to another contact");
		} else if (st && strcmp(st, "not_found") == 0) {
			api_reply_error(rq, 404, "not_found", NULL, "no such contact");
		} else {
			api_reply_error(rq, 409, "conflict", NULL, "contact exists");
		}
	}
	api_release(rq);
	free(w);
}

static void contact_write(struct api_req *rq, const char *mode, const char *id, struct argv *pairs,
                          unsigned ok_status)
{
	struct app *app = api_app(rq);
	struct argv a;
	argv_init(&a);
	argv_add(&a, mode);
	argv_add(&a, id);
	argv_addll(&a, now_ms());
	for (int i = 0; i < pairs->n; i++)
		argv_addn(&a, pairs->v[i], pairs->len[i]);
	struct write_ctx *w = xcalloc(1, sizeof *w);
	w->rq = rq;
	w->ok_status = ok_status;
	api_hold(rq);
	store_eval(app->st, SCRIPT_CONTACT_WRITE, &a, on_written, w);
	argv_free(&a);
}

static void h_create(struct api_req *rq)
{
	struct app *app = api_app(rq);
	struct argv pairs;
	struct contact_verr e;
	argv_init(&pairs);
	if (api_contact_pairs(api_json(rq), 0, 0, app->cfg, &pairs, &e) < 0) {
		api_reply_error(rq, 400, e.code, e.field, "%s", e.reason);
		argv_free(&pairs);
		return;
	}
	if (api_store_ready(rq)) {
		char id[ID_LEN + 1];
		id_new(id, now_ms());
		contact_write(rq, "create", id, &pairs, 201);
	}
	argv_free(&pairs);
}

static void h_patch(struct api_req *rq)
{
	struct app *app = api_app(rq);
	const char *id = api_param(rq, "id");
	if (!id_valid(id)) {
		api_reply_error(rq, 404, "not_found", NULL, "no such contact");
		return;
	}
	struct argv pairs;
	struct contact_verr e;
	argv_init(&pairs);
	if (api_contact_pairs(api_json(rq), 1, 0, app->cfg, &pairs, &e) < 0) {
		api_reply_error(rq, 400, e.code, e.field, "%s", e.reason);
		argv_free(&pairs);
		return;
	}
	if (api_store_ready(rq))
		contact_write(rq, "patch", id, &pairs, 200);
	argv_free(&pairs);
}

static void on_got(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0)
			api_reply_json(rq, 200, store_contact_json(rep));
		else
			api_reply_error(rq, 404, "not_found", NULL, "no such contact");
	}
	api_release(rq);
}

static void h_get(struct api_req *rq)
{
	struct app *app = api_app(rq);
	const char *id = api_param(rq, "id");
	if (!id_valid(id)) {
		api_reply_error(rq, 404, "not_found", NULL, "no such contact");
		return;
	}
	if (!api_store_ready(rq))
		return;
	api_hold(rq);
	store_contact_get(app->st, id, on_got, rq);
}

static void on_deleted(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
			api_reply_raw(rq, 204, NULL, "", 0);
		else
			api_reply_error(rq, 404, "not_found", NULL, "no such contact");
	}
	api_release(rq);
}

static void h_delete(struct api_req *rq)
{
	struct app *app = api_app(rq);
	const char *id = api_param(rq, "id");
	if (!id_valid(id)) {
		api_reply_error(rq, 404, "not_found", NULL, "no such contact");
		return;
	}
	if (!api_store_ready(rq))
		return;
	const char *erase = api_query(rq, "erase");
	if (erase && strcmp(erase, "false") != 0) {
		if (strcmp(erase, "true") != 0) {
			api_reply_error(rq, 400, "invalid_field", "erase",
			                "erase is true or false");
			return;
		}
		api_privacy_erase(rq, id); /* everything held about the person */
		return;
	}
	api_hold(rq);
	store_contact_delete(app->st, id, on_deleted, rq);
}

/* List and lookup ------------------------------------------------------ */

static void on_listed(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		json_t *items = json_array();
		const char *next = NULL;
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0) {
			next = reply_str(rep->element[0]);
			for (size_t i = 1; i < rep->elements; i++)
				if (rep->element[i]->elements > 0)
					json_array_append_new(items,
					                      store_contact_json(rep->element[i]));
		}
		json_t *o = json_object();
		json_object_set_new(o, "items", items);
		json_object_set_new(o, "next_cursor",
		                    next && *next ? json_string(next) : json_null());
		api_reply_json(rq, 200, o);
	}
	api_release(rq);
}

static void on_lookup_got(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		json_t *items = json_array();
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements > 0)
			json_array_append_new(items, store_contact_json(rep));
		json_t *o = json_object();
		json_object_set_new(o, "items", items);
		json_object_set_new(o, "next_cursor", json_null());
		api_reply_json(rq, 200, o);
	}
	api_release(rq);
}

static void on_lookup(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	struct app *app = api_app(rq);
	if (!api_reply_redis_failure(rq, rep)) {
		const char *id = reply_str(rep);
		if (id) {
			store_contact_get(app->st, id, on_lookup_got, rq);
			return; /* keeps the hold */
		}
		json_t *o = json_pack("{s:[], s:n}", "items", "next_cursor");
		api_reply_json(rq, 200, o);
	}
	api_release(rq);
}

static void h_list(struct api_req *rq)
{
	struct app *app = api_app(rq);
	const char *chan = api_query(rq, "channel"), *addr = api_query(rq, "address");
	if (chan || addr) {
		int kind = chan ? addr_kind_parse(chan) : -1;
		if (kind < 0) {
			api_reply_error(rq, 400, "invalid_field", "channel",
			                "channel must be sms, email or chat");
			return;
		}
		if (!addr) {
			api_reply_error(rq, 400, "missing_field", "address",
			                "address is required with channel");
			return;
		}
		char out[ADDR_MAX + 1];
		const char *why = "invalid";
		if (addr_normalize((enum addr_kind)kind, addr, app->cfg->contacts_default_country,
		                   out, &why) < 0) {
			api_reply_error(rq, 400, "invalid_field", "address", "%s", why);
			return;
		}
		if (!api_store_ready(rq))
			return;
		api_hold(rq);
		store_contact_lookup(app->st, chan, out, on_lookup, rq);
		return;
	}
	int64_t limit = 50;
	const char *l = api_query(rq, "limit");
	if (l && parse_i64(l, 1, 500, &limit) < 0) {
		api_reply_error(rq, 400, "invalid_field", "limit", "limit is 1..500");
		return;
	}
	const char *cursor = api_query(rq, "cursor");
	if (cursor && *cursor && !id_valid(cursor)) {
		api_reply_error(rq, 400, "invalid_field", "cursor", "not a cursor from this API");
		return;
	}
	if (!api_store_ready(rq))
		return;
	api_hold(rq);
	store_contact_list(app->st, cursor, (int)limit, on_listed, rq);
}

/* Bulk NDJSON ----------------------------------------------------------- */

struct bulk {
	struct api_req *rq;
	struct buf line;
	long lineno;
	int skipping; /* current line is over the cap */
	int pending, ended, paused;
	long created, updated, failed;
	json_t *errors;
};

struct bulk_op {
	struct bulk *b;
	long lineno;
};

static void bulk_free(void *p)
{
	struct bulk *b = p;
	buf_free(&b->line);
	json_decref(b->errors);
	free(b);
}

static void bulk_error(struct bulk *b, long lineno, const char *field, const char *reason)
{
	b->failed++;
	if (json_array_size(b->errors) >= BULK_ERRORS_MAX)
		return;
	json_t *e = json_object();
	json_object_set_new(e, "line", json_integer(lineno));
	json_object_set_new(e, "field", field && *field ? json_string(field) : json_null());
	json_object_set_new(e, "reason", json_string(reason));
	json_array_append_new(b->errors, e);
}

static void bulk_maybe_finish(struct bulk *b)
{
	if (!b->ended || b->pending > 0 || api_replied(b->rq))
		return;
	json_t *o = json_object();
	json_object_set_new(o, "created", json_integer(b->created));
	json_object_set_new(o, "updated", json_integer(b->updated));
	json_object_set_new(o, "failed", json_integer(b->failed));
	json_object_set_new(o, "errors", json_incref(b->errors));
	api_reply_json(b->rq, 200, o);
}

static void on_bulk_written(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct bulk_op *op = arg;
	struct bulk *b = op->b;
	struct api_req *rq = b->rq;
	b->pending--;
	const char *st = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
	                     ? reply_str(rep->element[0])
	                     : NULL;
	if (!rep || rep->type == REDIS_REPLY_ERROR) {
		bulk_error(b, op->lineno, NULL, "store unavailable; line not written");
	} else if (st && strcmp(st, "ok") == 0) {
		if (rep->elements > 2 && rep->element[2]->integer)
			b->created++;
		else
			b->updated++;
	} else if (st && strcmp(st, "taken") == 0 && rep->elements >= 2) {
		char field[32];
		snprintf(field, sizeof field, "addresses.%s", reply_str(rep->element[1]));
		bulk_error(b, op->lineno, field, "this address belongs to another contact");
	} else if (st && strcmp(st, "not_found") == 0) {
		bulk_error(b, op->lineno, "id", "no such contact");
	} else {
		bulk_error(b, op->lineno, NULL, "not written");
	}
	free(op);
	if (b->paused && b->pending < BULK_PENDING_MAX / 2) {
		b->paused = 0;
		api_resume(rq);
	}
	bulk_maybe_finish(b);
	api_release(rq);
}

static void bulk_line(struct bulk *b, const char *s, size_t n)
{
	struct app *app = api_app(b->rq);
	while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	while (n > 0 && (*s == ' ' || *s == '\t'))
		s++, n--;
	if (n == 0)
		return;
	json_error_t jerr;
	json_t *o = json_loadb(s, n, JSON_REJECT_DUPLICATES, &jerr);
	if (!o || !json_is_object(o)) {
		char reason[200];
		if (o)
			snprintf(reason, sizeof reason, "a line must be a JSON object");
		else
			snprintf(reason, sizeof reason, "invalid JSON at column %d: %s",
			         jerr.column, jerr.text);
		bulk_error(b, b->lineno, NULL, reason);
		json_decref(o);
		return;
	}
	const json_t *idj = json_object_get(o, "id");
	const char *mode = "upsert";
	char id[ID_LEN + 1];
	if (idj) {
		if (!json_is_string(idj) || !id_valid(json_string_value(idj))) {
			bulk_error(b, b->lineno, "id", "not a contact id");
			json_decref(o);
			return;
		}
		mode = "patch";
		snprintf(id, sizeof id, "%s", json_string_value(idj));
	} else {
		id_new(id, now_ms());
	}
	struct argv pairs;
	struct contact_verr e;
	argv_init(&pairs);
	if (api_contact_pairs(o, 1, 1, app->cfg, &pairs, &e) < 0) {
		bulk_error(b, b->lineno, e.field, e.reason);
	} else {
		struct argv a;
		argv_init(&a);
		argv_add(&a, mode);
		argv_add(&a, id);
		argv_addll(&a, now_ms());
		for (int i = 0; i < pairs.n; i++)
			argv_addn(&a, pairs.v[i], pairs.len[i]);
		struct bulk_op *op = xcalloc(1, sizeof *op);
		op->b = b;
		op->lineno = b->lineno;
		b->pending++;
		api_hold(b->rq);
		store_eval(app->st, SCRIPT_CONTACT_WRITE, &a, on_bulk_written, op);
		argv_free(&a);
	}
	argv_free(&pairs);
	json_decref(o);
}

static void h_bulk(struct api_req *rq)
{
	struct bulk *b = xcalloc(1, sizeof *b);
	b->rq = rq;
	buf_init(&b->line, BULK_LINE_MAX);
	b->errors = json_array();
	api_set_data(rq, b, bulk_free);
}

static long bulk_chunk(struct api_req *rq, const char *data, size_t len)
{
	struct bulk *b = api_data(rq);
	struct app *app = api_app(rq);
	/* A long import is fine while it progresses: the deadline counts from
	 * the last chunk, not from the request head. */
	api_set_timeout(rq, app->cfg->api_request_timeout_ms);
	size_t i = 0;
	while (i < len) {
		if (b->pending >= BULK_PENDING_MAX) {
			b->paused = 1;
			return (long)i; /* resumed from on_bulk_written */
		}
		const char *nl = memchr(data + i, '\n', len - i);
		size_t take = nl ? (size_t)(nl - (data + i)) : len - i;
		if (!b->skipping && buf_append(&b->line, data + i, take) < 0) {
			b->skipping = 1;
			buf_reset(&b->line);
		}
		i += take;
		if (!nl)
			break;
		i++; /* the newline */
		b->lineno++;
		if (b->skipping)
			bulk_error(b, b->lineno, NULL, "line longer than 64 KiB");
		else
			bulk_line(b, b->line.p ? b->line.p : "", b->line.len);
		b->skipping = 0;
		buf_reset(&b->line);
	}
	return (long)len;
}

static void bulk_end(struct api_req *rq)
{
	struct bulk *b = api_data(rq);
	if (b->skipping || b->line.len > 0) {
		b->lineno++;
		if (b->skipping)
			bulk_error(b, b->lineno, NULL, "line longer than 64 KiB");
		else
			bulk_line(b, b->line.p, b->line.len);
		buf_reset(&b->line);
	}
	b->ended = 1;
	bulk_maybe_finish(b);
}

const struct api_route api_contact_routes[] = {
    {"POST", "/v1/contacts", ROLE_MARKETER, API_BODY_JSON, h_create, NULL, NULL},
    {"GET", "/v1/contacts", ROLE_VIEWER, API_BODY_NONE, h_list, NULL, NULL},
    {"POST", "/v1/contacts/bulk", ROLE_MARKETER, API_BODY_STREAM, h_bulk, bulk_chunk, bulk_end},
    {"GET", "/v1/contacts/{id}", ROLE_VIEWER, API_BODY_NONE, h_get, NULL, NULL},
    {"PATCH", "/v1/contacts/{id}", ROLE_MARKETER, API_BODY_JSON, h_patch, NULL, NULL},
    {"DELETE", "/v1/contacts/{id}", ROLE_ADMIN, API_BODY_NONE, h_delete, NULL, NULL},
};
const size_t api_contact_nroutes = ARRAY_SIZE(api_contact_routes);
