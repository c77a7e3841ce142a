/*
 * api_dlq.c - /v1/dlq: the dead letters (messages that failed for good or
 * expired).  List them in order, send one again (admin: a fresh schedule
 * through lua/dlq_retry.lua), or drop one (admin).  Knows no key names.
 *
 * Limits: limit 1..500 per page.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"
#include "util.h"

/* A stream entry id: digits "-" digits, as Redis writes them. */
static int entry_valid(const char *s)
{
	if (!s || !*s || strlen(s) > 41)
		return 0;
	const char *p = s;
	while (isdigit((unsigned char)*p))
		p++;
	if (p == s || *p != '-')
		return 0;
	const char *q = ++p;
	while (isdigit((unsigned char)*p))
		p++;
	return p != q && *p == '\0';
}

static void on_listed(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		json_t *items = json_array();
		const char *last = NULL;
		int limit = (int)(intptr_t)api_data(rq);
		for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
			const redisReply *e = rep->element[i];
			if (e->type != REDIS_REPLY_ARRAY || e->elements < 2)
				continue;
			last = reply_str(e->element[0]);
			const char *at = hash_get(e->element[1], "at");
			int64_t ms = 0;
			char t[40] = "";
			if (at && parse_i64(at, 0, INT64_MAX, &ms) == 0)
				fmt_time(ms, t, sizeof t);
			json_array_append_new(items,
			                      json_pack("{s:s?, s:s?, s:s?, s:s?}", "entry", last,
			                                "message_id", hash_get(e->element[1], "m"),
			                                "reason", hash_get(e->element[1], "reason"),
			                                "at", *t ? t : NULL));
		}
		json_t *o = json_object();
		json_object_set_new(o, "items", items);
		json_object_set_new(o, "next_cursor",
		                    last && (int)json_array_size(items) >= limit ? json_string(last)
		                                                                 : json_null());
		api_reply_json(rq, 200, o);
	}
	api_release(rq);
}

static void h_list(struct api_req *rq)
{
	struct app *app = api_app(rq);
	int64_t limit = 50;
	const char *l = api_query(rq, "limit"), *cursor = api_query(rq, "cursor");
	if (l && parse_i64(l, 1, 500, &limit) < 0) {
		api_reply_error(rq, 400, "invalid_field", "limit", "limit is 1..500");
		return;
	}
	if (cursor && *cursor && !entry_valid(cursor)) {
		api_reply_error(rq, 400, "invalid_field", "cursor", "not a cursor from this API");
		return;
	}
	if (!api_store_ready(rq))
		return;
	api_set_data(rq, (void *)(intptr_t)limit, NULL);
	api_hold(rq);
	store_dlq_list(app->st, cursor, (int)limit, on_listed, rq);
}

static void on_retried(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		const char *st = rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
		                     ? reply_str(rep->element[0])
		                     : NULL;
		if (st && strcmp(st, "ok") == 0 && rep->elements > 1) {
			log_notice("api", "msg=%s requeued from the dead letters token=%s",
			           reply_str(rep->element[1]), log_q(api_token_name(rq)));
			api_reply_json(rq, 200,
			               json_pack("{s:s, s:s}", "message_id",
			                         reply_str(rep->element[1]), "state", "scheduled"));
		} else if (st && strcmp(st, "bad_state") == 0 && rep->elements > 1) {
			api_reply_error(rq, 409, "conflict", NULL,
			                "the message is %s, not failed or expired",
			                reply_str(rep->element[1]));
		} else {
			api_reply_error(rq, 404, "not_found", NULL, "no such dead letter");
		}
	}
	api_release(rq);
}

static void h_retry(struct api_req *rq)
{
	struct app *app = api_app(rq);
	const char *entry = api_param(rq, "entry");
	if (!entry_valid(entry)) {
		api_reply_error(rq, 404, "not_found", NULL, "no such dead letter");
		return;
	}
	if (!api_store_ready(rq))
		return;
	int64_t now = now_ms();
	struct argv a;
	argv_init(&a);
	argv_add(&a, entry);
	argv_addll(&a, now);
	argv_addll(&a, now + app->cfg->sched_message_ttl_ms);
	api_hold(rq);
	store_eval(app->st, SCRIPT_DLQ_RETRY, &a, on_retried, rq);
	argv_free(&a);
}

static void on_dropped(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
			api_reply_raw(rq, 204, NULL, "", 0);
		else
			api_reply_error(rq, 404, "not_found", NULL, "no such dead letter");
	}
	api_release(rq);
}

static void h_drop(struct api_req *rq)
{
	struct app *app = api_app(rq);
	const char *entry = api_param(rq, "entry");
	if (!entry_valid(entry)) {
		api_reply_error(rq, 404, "not_found", NULL, "no such dead letter");
		return;
	}
	if (!api_store_ready(rq))
		return;
	api_hold(rq);
	store_dlq_delete(app->st, entry, on_dropped, rq);
}

const struct api_route api_dlq_routes[] = {
    {"GET", "/v1/dlq", ROLE_VIEWER, API_BODY_NONE, h_list, NULL, NULL},
    {"POST", "/v1/dlq/{entry}/retry", ROLE_ADMIN, API_BODY_NONE, h_retry, NULL, NULL},
    {"DELETE", "/v1/dlq/{entry}", ROLE_ADMIN, API_BODY_NONE, h_drop, NULL, NULL},
};
const size_t api_dlq_nroutes = ARRAY_SIZE(api_dlq_routes);
