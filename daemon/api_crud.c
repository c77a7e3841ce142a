/*
 * api_crud.c - the request handling the resource handlers share (see
 * api_crud.h): checking ?limit= and ?cursor=, the page answer and the
 * status words of an array reply; and, driven by one struct api_crud per
 * resource, whole GET /{id}, paged GET / and DELETE /{id} handlers and the
 * create / replace write of a versioned definition ([json, v, updated] in
 * the store, the object plus "v" and "updated_at" in the API).
 *
 * Owns only a pending write's copy of the definition (freed with the
 * request).  Never knows key names (the resource's store functions do),
 * never validates a definition (the resource does before writing).
 * Limits: the resource's page sizes.
 */
#include "api_crud.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"

int api_crud_list_args(struct api_req *rq, int64_t dflt, int64_t max,
                       int (*cursor_ok)(const char *), int64_t *limit, const char **cursor)
{
	*limit = dflt;
	const char *l = api_query(rq, "limit");
	if (l && parse_i64(l, 1, max, limit) < 0) {
		api_reply_error(rq, 400, "invalid_field", "limit", "limit is 1..%lld",
		                (long long)max);
		return 0;
	}
	*cursor = api_query(rq, "cursor");
	if (*cursor && **cursor && !cursor_ok(*cursor)) {
		api_reply_error(rq, 400, "invalid_field", "cursor", "not a cursor from this API");
		return 0;
	}
	return 1;
}

const char *api_crud_str(const redisReply *rep, size_t i)
{
	return rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > i
	           ? reply_str(rep->element[i])
	           : NULL;
}

void api_crud_reply_page(struct api_req *rq, json_t *items, const char *next)
{
	api_reply_json(rq, 200,
	               json_pack("{s:o, s:o}", "items", items, "next_cursor",
	                         next && *next ? json_string(next) : json_null()));
}

/* ---------------------------------------------------------------- versions */

long long api_crud_ll(const redisReply *r)
{
	if (!r)
		return 0;
	if (r->type == REDIS_REPLY_INTEGER)
		return r->integer;
	int64_t v;
	const char *s = reply_str(r);
	return s && parse_i64(s, 0, INT64_MAX, &v) == 0 ? v : 0;
}

json_t *api_crud_versioned(json_t *def, long long v, int64_t updated)
{
	char t[40];
	fmt_time(updated, t, sizeof t);
	json_object_set_new(def, "v", json_integer(v));
	json_object_set_new(def, "updated_at", json_string(t));
	return def;
}

json_t *api_crud_stored(const redisReply *json, const redisReply *v, const redisReply *updated)
{
	const char *text = reply_str(json);
	json_t *def = text ? json_loads(text, 0, NULL) : NULL;
	if (!json_is_object(def)) {
		json_decref(def);
		return NULL;
	}
	return api_crud_versioned(def, api_crud_ll(v), (int64_t)api_crud_ll(updated));
}

void api_crud_time(json_t *o, const char *key, const char *ms_text)
{
	int64_t ms;
	if (!ms_text || parse_i64(ms_text, 0, INT64_MAX, &ms) < 0) {
		json_object_set_new(o, key, json_null());
		return;
	}
	char t[40];
	fmt_time(ms, t, sizeof t);
	json_object_set_new(o, key, json_string(t));
}

void api_crud_new_id(char id[ID_LEN + 1])
{
	id_new(id, now_ms());
	for (char *p = id; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
}

/* ---------------------------------------------------------------- handlers */

static struct store *store_of(struct api_req *rq)
{
	return ((struct app *)api_app(rq))->st;
}

/* The resource of a pending GET, list or DELETE (static, never freed). */
static void set_res(struct api_req *rq, const struct api_crud *res)
{
	api_set_data(rq, (void *)res, NULL);
}

static void reply_not_found(struct api_req *rq, const struct api_crud *res)
{
	api_reply_error(rq, 404, "not_found", NULL, "no such %s", res->noun);
}

int api_crud_param(struct api_req *rq, const struct api_crud *res)
{
	if (!res->id_ok(api_param(rq, "id"))) {
		reply_not_found(rq, res);
		return 0;
	}
	return 1;
}

static void on_got(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	const struct api_crud *res = api_data(rq);
	if (api_reply_redis_failure(rq, rep)) {
		/* answered */
	} else if (res->reply) {
		res->reply(rq, 200, rep);
	} else {
		json_t *t = rep->type == REDIS_REPLY_ARRAY && rep->elements == 3
		                ? api_crud_stored(rep->element[0], rep->element[1], rep->element[2])
		                : NULL;
		if (t)
			api_reply_json(rq, 200, t);
		else
			reply_not_found(rq, res);
	}
	api_release(rq);
}

void api_crud_get(struct api_req *rq, const struct api_crud *res)
{
	if (!api_crud_param(rq, res) || !api_store_ready(rq))
		return;
	set_res(rq, res);
	api_hold(rq);
	res->read(store_of(rq), api_param(rq, "id"), on_got, rq);
}

static void on_listed(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	const struct api_crud *res = api_data(rq);
	if (!api_reply_redis_failure(rq, rep)) {
		json_t *items = json_array();
		const char *next = api_crud_str(rep, 0);
		for (size_t i = 1; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
			const redisReply *e = rep->element[i];
			if (e->type != REDIS_REPLY_ARRAY || e->elements != res->list_fields)
				continue;
			json_t *o = res->item ? res->item(e)
			                      : api_crud_stored(e->element[1], e->element[2],
			                                        e->element[3]);
			if (o)
				json_array_append_new(items, o);
		}
		api_crud_reply_page(rq, items, next);
	}
	api_release(rq);
}

void api_crud_list(struct api_req *rq, const struct api_crud *res)
{
	int64_t limit;
	const char *cursor;
	if (!api_crud_list_args(rq, res->list_default, res->list_max, res->id_ok, &limit,
	                        &cursor) ||
	    !api_store_ready(rq))
		return;
	set_res(rq, res);
	api_hold(rq);
	res->list(store_of(rq), cursor, (int)limit, on_listed, rq);
}

static void on_deleted(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	const struct api_crud *res = api_data(rq);
	if (!api_reply_redis_failure(rq, rep)) {
		const char *st = api_crud_str(rep, 0);
		if (st && strcmp(st, "ok") == 0) {
			if (res->deleted)
				res->deleted(rq, rep);
			else
				log_info("api", "%s=%s op=delete token=%s", res->noun,
				         log_q(api_param(rq, "id")), log_q(api_token_name(rq)));
			api_reply_raw(rq, 204, NULL, "", 0);
		} else if (!(st && res->refused && res->refused(rq, st, rep))) {
			reply_not_found(rq, res);
		}
	}
	api_release(rq);
}

void api_crud_delete(struct api_req *rq, const struct api_crud *res)
{
	if (!api_crud_param(rq, res) || !api_store_ready(rq))
		return;
	set_res(rq, res);
	api_hold(rq);
	res->del(rq, api_param(rq, "id"), on_deleted, rq);
}

/* ---------------------------------------------------------------- writes */

struct write_op {
	const struct api_crud *res;
	json_t *def;
	int64_t now;
};

static void write_op_free(void *p)
{
	struct write_op *w = p;
	json_decref(w->def);
	free(w);
}

static void on_written(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	struct write_op *w = api_data(rq);
	const char *noun = w->res->noun;
	const char *st = api_crud_str(rep, 0);
	const char *id = json_string_value(json_object_get(w->def, "id"));
	int create = strcmp(api_method(rq), "POST") == 0;

	if (api_reply_redis_failure(rq, rep)) {
		/* answered */
	} else if (st && strcmp(st, "ok") == 0 && rep->elements > 1) {
		long long v = api_crud_ll(rep->element[1]);
		log_info("api", "%s=%s v=%lld op=%s token=%s", noun, log_q(id), v,
		         create ? "create" : "replace", log_q(api_token_name(rq)));
		api_reply_json(rq, create ? 201 : 200,
		               api_crud_versioned(json_incref(w->def), v, w->now));
	} else if (st && strcmp(st, "exists") == 0) {
		api_reply_error(rq, 409, "conflict", "id", "a %s with this id exists", noun);
	} else if (st && strcmp(st, "not_found") == 0) {
		reply_not_found(rq, w->res);
	} else if (st && strcmp(st, "conflict") == 0) {
		api_reply_error(rq, 409, "conflict", "v",
		                "the %s was changed meanwhile: it is at version %lld", noun,
		                rep->elements > 1 ? api_crud_ll(rep->element[1]) : 0);
	} else {
		log_err("api", "%s write: unexpected reply", noun);
		api_reply_error(rq, 503, "unavailable", NULL, "the store refused the request");
	}
	api_release(rq);
}

void api_crud_write(struct api_req *rq, const struct api_crud *res, json_t *def, long long expect_v)
{
	if (!api_store_ready(rq)) {
		json_decref(def);
		return;
	}
	struct write_op *w = xcalloc(1, sizeof *w);
	w->res = res;
	w->def = def;
	w->now = now_ms();
	api_set_data(rq, w, write_op_free);
	char *text = json_dumps(def, JSON_COMPACT);
	if (!text)
		abort();
	const char *id = json_string_value(json_object_get(def, "id"));
	api_hold(rq);
	if (strcmp(api_method(rq), "POST") == 0)
		res->create(store_of(rq), id, text, w->now, on_written, rq);
	else
		res->replace(store_of(rq), id, text, expect_v, w->now, on_written, rq);
	free(text);
}
