/*
 * api_privacy.c - the rights of access and erasure (docs/privacy.md):
 * GET /v1/contacts/{id}/export, everything held about a person as one JSON
 * document, and DELETE /v1/contacts/{id}?erase=true (api_privacy.h), which
 * removes it.  Both run lua/contact_erase.lua: pages over the raw inbound
 * audit stream (AUDIT_PAGE entries each, so Redis is never blocked for
 * long), then one atomic 'export' or 'erase' step.  Knows no key names;
 * values sealed with [privacy] key_file are opened before they are shown.
 *
 * Owns the per-request context.  Logs who exported or erased which
 * contact id (an id, never a name, address or text).
 *
 * Limits: AUDIT_PAGE entries per page, AUDIT_PAGES_MAX pages (more than the
 * capped audit stream holds), EXPORT_MESSAGES_MAX messages in an export
 * (the document says when it was cut).
 */
#include "api_privacy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "privacy.h"
#include "store_timeline.h"
#include "util.h"

#define AUDIT_PAGE          1000
#define AUDIT_PAGES_MAX     1000
#define EXPORT_MESSAGES_MAX 10000
#define REPLY_JSON_DEPTH    8

struct job {
	struct api_req *rq;
	char id[ID_LEN + 1];
	int erase;
	char after[48]; /* the last audit stream id looked at */
	int pages;
	long long matched;
	json_t *inbound; /* export: the audit entries */
};

static void job_end(struct job *j)
{
	api_release(j->rq);
	json_decref(j->inbound);
	free(j);
}

static const char *str_at(const redisReply *r, size_t i)
{
	return r && r->type == REDIS_REPLY_ARRAY && i < r->elements ? reply_str(r->element[i])
	                                                            : NULL;
}

static const redisReply *arr_at(const redisReply *r, size_t i)
{
	if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
	    r->element[i]->type != REDIS_REPLY_ARRAY)
		return NULL;
	return r->element[i];
}

/* Any reply as JSON: strings (invalid UTF-8 as null), integers, arrays. */
static json_t *reply_json(const redisReply *r, int depth)
{
	if (!r || depth > REPLY_JSON_DEPTH)
		return json_null();
	switch (r->type) {
	case REDIS_REPLY_STRING:
	case REDIS_REPLY_STATUS: {
		json_t *s = json_stringn(r->str, r->len);
		return s ? s : json_null();
	}
	case REDIS_REPLY_INTEGER:
		return json_integer(r->integer);
	case REDIS_REPLY_ARRAY: {
		json_t *a = json_array();
		for (size_t i = 0; i < r->elements; i++)
			json_array_append_new(a, reply_json(r->element[i], depth + 1));
		return a;
	}
	default:
		return json_null();
	}
}

/* A flat field/value array as an object (strings only). */
static json_t *hash_json(const redisReply *h)
{
	json_t *o = json_object();
	for (size_t i = 0; h && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
		const char *k = reply_str(h->element[i]);
		json_t *v = json_stringn(h->element[i + 1]->str ? h->element[i + 1]->str : "",
		                         h->element[i + 1]->str ? h->element[i + 1]->len : 0);
		if (k && v)
			json_object_set_new(o, k, v);
		else
			json_decref(v);
	}
	return o;
}

/* XRANGE entries, oldest first, in the timeline's JSON form. */
static json_t *entries_json(const redisReply *r)
{
	json_t *a = json_array();
	for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		json_t *e = store_timeline_entry_json(r->element[i]);
		if (e)
			json_array_append_new(a, e);
	}
	return a;
}

/*
 * The 'export' reply: {'ok', contact, tags, timeline, lc, engagement,
 * messages, ledger, lots, caps, registry, truncated}, opened in place.
 */
static json_t *export_json(const redisReply *rep)
{
	privacy_open_reply(rep);
	json_t *o = json_object();
	const redisReply *c = arr_at(rep, 1);
	json_object_set_new(o, "contact", store_contact_json(c));
	json_object_set_new(o, "record", hash_json(c));
	json_object_set_new(o, "tags", reply_json(arr_at(rep, 2), 0));
	json_object_set_new(o, "timeline", entries_json(arr_at(rep, 3)));
	const redisReply *lc = arr_at(rep, 4);
	json_object_set_new(o, "last_campaign_touch",
	                    lc && lc->elements > 0 ? hash_json(lc) : json_null());

	json_t *eng = json_array();
	const redisReply *e = arr_at(rep, 5);
	for (size_t i = 0; e && i < e->elements; i++)
		if (str_at(e->element[i], 0) && str_at(e->element[i], 1))
			json_array_append_new(eng, json_pack("{s:s, s:s}", "what",
			                                     str_at(e->element[i], 0), "id",
			                                     str_at(e->element[i], 1)));
	json_object_set_new(o, "engagement", eng);

	json_t *msgs = json_array();
	const redisReply *m = arr_at(rep, 6);
	for (size_t i = 0; m && i < m->elements; i++) {
		const redisReply *h = arr_at(m->element[i], 1);
		if (h && h->elements > 0)
			json_array_append_new(msgs, store_msg_json(h, arr_at(m->element[i], 2)));
	}
	json_object_set_new(o, "messages", msgs);
	const redisReply *t = rep->elements > 11 ? rep->element[11] : NULL;
	json_object_set_new(o, "messages_truncated",
	                    json_boolean(t && t->type == REDIS_REPLY_INTEGER && t->integer));

	json_t *lots = json_array();
	const redisReply *l = arr_at(rep, 8);
	for (size_t i = 0; l && i + 1 < l->elements; i += 2)
		if (reply_str(l->element[i]) && reply_str(l->element[i + 1]))
			json_array_append_new(lots, json_pack("{s:s, s:s}", "lot",
			                                      reply_str(l->element[i]), "expires",
			                                      reply_str(l->element[i + 1])));
	json_object_set_new(
	    o, "points",
	    json_pack("{s:o, s:o}", "ledger", entries_json(arr_at(rep, 7)), "lots", lots));

	json_t *caps = json_object();
	const redisReply *fc = arr_at(rep, 9);
	for (size_t i = 0; fc && i < fc->elements; i++) {
		const redisReply *p = fc->element[i];
		if (str_at(p, 0) && p->elements > 1 && p->element[1]->type == REDIS_REPLY_INTEGER)
			json_object_set_new(caps, str_at(p, 0),
			                    json_integer(p->element[1]->integer));
	}
	json_object_set_new(o, "frequency_caps", caps);

	json_t *other = json_array();
	const redisReply *g = arr_at(rep, 10);
	for (size_t i = 0; g && i < g->elements; i++) {
		const redisReply *p = g->element[i];
		if (!str_at(p, 0) || !str_at(p, 1) || p->elements < 3)
			continue;
		json_t *x = json_object();
		json_object_set_new(x, "entry", json_string(str_at(p, 0)));
		json_object_set_new(x, "type", json_string(str_at(p, 1)));
		json_object_set_new(x, "data", reply_json(p->element[2], 0));
		json_array_append_new(other, x);
	}
	json_object_set_new(o, "other", other);
	return o;
}

static void audit_page(struct job *j);

static void on_erased(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct job *j = arg;
	if (!api_reply_redis_failure(j->rq, rep)) {
		const char *st = str_at(rep, 0);
		if (st && strcmp(st, "ok") == 0 && rep->elements >= 3) {
			log_notice("privacy",
			           "contact=%s erased keys=%lld entries=%lld inbound=%lld by=%s",
			           j->id, rep->element[1]->integer, rep->element[2]->integer,
			           j->matched, log_q(api_token_name(j->rq)));
			api_reply_raw(j->rq, 204, NULL, "", 0);
		} else {
			api_reply_error(j->rq, 404, "not_found", NULL, "no such contact");
		}
	}
	job_end(j);
}

static void on_exported(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct job *j = arg;
	if (!api_reply_redis_failure(j->rq, rep)) {
		const char *st = str_at(rep, 0);
		if (st && strcmp(st, "ok") == 0 && rep->elements >= 12) {
			json_t *o = export_json(rep);
			json_object_set(o, "inbound", j->inbound);
			char at[40];
			fmt_time(now_ms(), at, sizeof at);
			json_object_set_new(o, "exported_at", json_string(at));
			log_notice("privacy", "contact=%s exported by=%s", j->id,
			           log_q(api_token_name(j->rq)));
			api_reply_json(j->rq, 200, o);
		} else {
			api_reply_error(j->rq, 404, "not_found", NULL, "no such contact");
		}
	}
	job_end(j);
}

/* After the audit pages: the one atomic step. */
static void finish(struct job *j)
{
	struct app *app = api_app(j->rq);
	struct argv a;
	argv_init(&a);
	argv_add(&a, j->erase ? "erase" : "export");
	argv_add(&a, j->id);
	if (j->erase) {
		argv_add(&a, j->after);
		argv_addll(&a, now_ms());
		store_eval(app->st, SCRIPT_CONTACT_ERASE, &a, on_erased, j);
	} else {
		argv_addll(&a, EXPORT_MESSAGES_MAX);
		store_eval(app->st, SCRIPT_CONTACT_ERASE, &a, on_exported, j);
	}
	argv_free(&a);
}

static void on_audit(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct job *j = arg;
	if (api_reply_redis_failure(j->rq, rep)) {
		job_end(j);
		return;
	}
	const char *st = str_at(rep, 0);
	if (!st || strcmp(st, "ok") != 0 || rep->elements < 5) {
		api_reply_error(j->rq, 404, "not_found", NULL, "no such contact");
		job_end(j);
		return;
	}
	const char *next = str_at(rep, 1), *last = str_at(rep, 4);
	if (rep->element[2]->type == REDIS_REPLY_INTEGER)
		j->matched += rep->element[2]->integer;
	if (!j->erase) {
		const redisReply *e = arr_at(rep, 3);
		privacy_open_reply(e);
		for (size_t i = 0; e && i < e->elements; i++) {
			json_t *x = store_timeline_entry_json(e->element[i]);
			if (x)
				json_array_append_new(j->inbound, x);
		}
	}
	snprintf(j->after, sizeof j->after, "%s", last ? last : "");
	if (next && *next && ++j->pages < AUDIT_PAGES_MAX)
		audit_page(j);
	else
		finish(j);
}

static void audit_page(struct job *j)
{
	struct app *app = api_app(j->rq);
	struct argv a;
	argv_init(&a);
	argv_add(&a, "audit");
	argv_add(&a, j->id);
	argv_add(&a, j->after);
	argv_addll(&a, AUDIT_PAGE);
	argv_add(&a, j->erase ? "1" : "0");
	store_eval(app->st, SCRIPT_CONTACT_ERASE, &a, on_audit, j);
	argv_free(&a);
}

static void start(struct api_req *rq, const char *id, int erase)
{
	struct job *j = xcalloc(1, sizeof *j);
	j->rq = rq;
	j->erase = erase;
	snprintf(j->id, sizeof j->id, "%s", id);
	if (!erase)
		j->inbound = json_array();
	api_hold(rq);
	audit_page(j);
}

void api_privacy_erase(struct api_req *rq, const char *id)
{
	start(rq, id, 1);
}

static void h_export(struct api_req *rq)
{
	const char *id = api_param(rq, "id");
	if (!id_valid(id)) {
		api_reply_error(rq, 404, "not_found", NULL, "no such contact");
		return;
	}
	if (!api_store_ready(rq))
		return;
	start(rq, id, 0);
}

const struct api_route api_privacy_routes[] = {
    {"GET", "/v1/contacts/{id}/export", ROLE_ADMIN, API_BODY_NONE, h_export, NULL, NULL},
};
const size_t api_privacy_nroutes = ARRAY_SIZE(api_privacy_routes);
