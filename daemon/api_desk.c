/*
 * api_desk.c - the complaints desk's HTTP API (docs/desk.md):
 *   POST   /v1/teams                      create a team (admin)
 *   GET    /v1/teams, /v1/teams/{id}      list and read (viewer)
 *   PUT    /v1/teams/{id}                 replace (admin)
 *   DELETE /v1/teams/{id}                 (admin) unless the rules name it
 *   GET    /v1/teams/{id}/stats           counts by state, first response p50/p90/mean
 *   GET    /v1/desk/rules                 the routing rules (viewer)
 *   PUT    /v1/desk/rules                 replace them, validated (admin)
 *   GET    /v1/tickets?team=&state=       list, oldest first (viewer)
 *   GET    /v1/tickets/{id}               a ticket and its conversation (viewer)
 *   POST   /v1/tickets/{id}/assign        {operator} (marketer)
 *   POST   /v1/tickets/{id}/answer        {text, operator}: the answer goes out on the
 *          channel the customer used (marketer)
 *   POST   /v1/tickets/{id}/close         (marketer)
 * Validation is desk.c's; storage store_desk.c's; tickets are opened by
 * desk_notify.c.  Knows no key names.  Never logs a text or an address.
 *
 * An answer is two steps: the message (store_msg_create, category
 * transactional, on the ticket's channel, idempotency key
 * desk-answer:{ticket}:k:{Idempotency-Key header} or, without the header,
 * desk-answer:{ticket}:t:{hash of the text}, kept 7 days), then its record
 * on the ticket and the contact's timeline (idempotent on the message id).
 * A retry of the same request (after a timeout, or a crash between the two
 * steps) finds the same message and records it once.
 *
 * Limits: list pages 1..DESK_LIST_MAX, stats over 1..DESK_STATS_DAYS_MAX
 * days and the newest DESK_STATS_SAMPLES first responses, answers
 * DESK_TEXT_MAX bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_crud.h"
#include "app.h"
#include "callback.h"
#include "club/desk.h"
#include "desk_notify.h"
#include "log.h"
#include "privacy.h"
#include "store_desk.h"
#include "text.h"
#include "util.h"

#define DESK_LIST_DEFAULT      50
#define DESK_LIST_MAX          200
#define DESK_STATS_DAYS        30
#define DESK_STATS_DAYS_MAX    365
#define DESK_STATS_SAMPLES     100000
#define DESK_ANSWER_IDEM_TTL_S (7 * 24 * 3600)
#define DESK_IDEM_MAX          200 /* Idempotency-Key bytes */

static struct store *st_of(struct api_req *rq)
{
	return ((struct app *)api_app(rq))->st;
}

/* ---------------------------------------------------------------- output */

static void time_field(json_t *o, const char *key, const redisReply *h, const char *field)
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

static void str_field(json_t *o, const char *key, const char *v)
{
	json_t *s = v && *v ? json_string(v) : NULL;
	json_object_set_new(o, key, s ? s : json_null());
}

static json_t *team_json(const redisReply *h)
{
	const char *txt = hash_get(h, "json");
	json_t *o = txt ? json_loads(txt, 0, NULL) : NULL;
	if (!json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "v", json_integer(hash_get_i64(h, "v", 0)));
	time_field(o, "created_at", h, "created");
	time_field(o, "updated_at", h, "updated");
	return o;
}

/* The API form of a ticket from its (opened) hash; NULL when empty. */
static json_t *ticket_json(const redisReply *h)
{
	if (!h || h->type != REDIS_REPLY_ARRAY || !hash_get(h, "id"))
		return NULL;
	json_t *o = json_object();
	str_field(o, "id", hash_get(h, "id"));
	str_field(o, "team", hash_get(h, "team"));
	str_field(o, "state", hash_get(h, "state"));
	json_t *r = json_object();
	str_field(r, "via", hash_get(h, "via"));
	str_field(r, "rule", hash_get(h, "rule"));
	json_object_set_new(o, "routed", r);
	str_field(o, "contact_id", hash_get(h, "contact"));
	str_field(o, "channel", hash_get(h, "channel"));
	str_field(o, "from", hash_get(h, "from"));
	str_field(o, "campaign", hash_get(h, "camp"));
	str_field(o, "operator", hash_get(h, "operator"));
	str_field(o, "last_text", hash_get(h, "last_text"));
	json_object_set_new(o, "messages", json_integer(hash_get_i64(h, "n", 0)));
	json_object_set_new(o, "answers", json_integer(hash_get_i64(h, "outs", 0)));
	json_object_set_new(o, "reopened", json_integer(hash_get_i64(h, "reopened", 0)));
	time_field(o, "created_at", h, "created");
	time_field(o, "updated_at", h, "updated");
	time_field(o, "last_message_at", h, "last_in");
	time_field(o, "assigned_at", h, "assigned_at");
	time_field(o, "first_answer_at", h, "first_answer");
	time_field(o, "answered_at", h, "answered_at");
	time_field(o, "closed_at", h, "closed_at");
	int64_t fr = hash_get_i64(h, "fr", -1);
	json_object_set_new(o, "first_response_ms", fr >= 0 ? json_integer(fr) : json_null());
	json_t *n = json_object();
	static const char *const kinds[] = {"webhook", "email", "chat"};
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		char f[16];
		snprintf(f, sizeof f, "nt:%s", kinds[i]);
		if (hash_get(h, f))
			json_object_set_new(n, kinds[i], json_string(hash_get(h, f)));
	}
	json_object_set_new(o, "notified", n);
	return o;
}

/* One conversation entry (stored JSON) in the API form: "at" as RFC 3339. */
static json_t *conv_json(const char *text)
{
	json_t *e = text ? json_loads(text, 0, NULL) : NULL;
	if (!json_is_object(e)) {
		json_decref(e);
		return NULL;
	}
	json_t *at = json_object_get(e, "at");
	if (json_is_number(at)) {
		char t[40];
		fmt_time((int64_t)json_number_value(at), t, sizeof t);
		json_object_set_new(e, "at", json_string(t));
	}
	/* texts may be sealed at rest */
	json_t *tx = json_object_get(e, "text");
	if (json_is_string(tx)) {
		char *plain =
		    privacy_open_str(json_string_value(tx), json_string_length(tx), NULL, NULL);
		if (plain) {
			json_t *p = json_string(plain);
			if (p)
				json_object_set_new(e, "text", p);
		}
		free(plain);
	}
	return e;
}

static int param_team(struct api_req *rq)
{
	if (!desk_id_valid(api_param(rq, "id"))) {
		api_reply_error(rq, 404, "not_found", NULL, "no such team");
		return 0;
	}
	return 1;
}

static int param_ticket(struct api_req *rq)
{
	if (!id_valid(api_param(rq, "id"))) {
		api_reply_error(rq, 404, "not_found", NULL, "no such ticket");
		return 0;
	}
	return 1;
}

/* ---------------------------------------------------------------- teams */

struct team_ctx {
	struct desk_team t;
	int create;
};

static void team_ctx_free(void *p)
{
	struct team_ctx *c = p;
	desk_team_free(&c->t);
	free(c);
}

static void on_team_read(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		json_t *o = rep->type == REDIS_REPLY_ARRAY && rep->elements ? team_json(rep) : NULL;
		if (!o)
			api_reply_error(rq, 404, "not_found", NULL, "no such team");
		else
			api_reply_json(
			    rq,
			    api_data(rq) && ((struct team_ctx *)api_data(rq))->create ? 201 : 200,
			    o);
	}
	api_release(rq);
}

static void on_team_written(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	struct team_ctx *c = api_data(rq);
	const char *s = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements
	                    ? reply_str(rep->element[0])
	                    : NULL;
	if (api_reply_redis_failure(rq, rep)) {
		/* answered */
	} else if (s && strcmp(s, "exists") == 0) {
		api_reply_error(rq, 409, "conflict", "id", "a team with this id exists");
	} else if (s && strcmp(s, "not_found") == 0) {
		api_reply_error(rq, 404, "not_found", NULL, "no such team");
	} else if (!s || strcmp(s, "ok") != 0) {
		api_reply_error(rq, 500, "internal", NULL, "unexpected answer from the store");
	} else {
		log_info("desk", "team=%s %s by=%s", c->t.id, c->create ? "created" : "replaced",
		         log_q(api_token_name(rq)));
		api_hold(rq);
		store_desk_team_get(st_of(rq), c->t.id, on_team_read, rq);
	}
	api_release(rq);
}

static void team_write(struct api_req *rq, int create)
{
	struct team_ctx *c = xcalloc(1, sizeof *c);
	c->create = create;
	api_set_data(rq, c, team_ctx_free);
	char field[96], why[200];
	if (desk_team_parse(api_json(rq), create ? NULL : api_param(rq, "id"), &c->t, field,
	                    sizeof field, why, sizeof why) < 0) {
		int missing = strcmp(field, "id") == 0 && !json_object_get(api_json(rq), "id");
		api_reply_error(rq, 400, missing ? "missing_field" : "invalid_field", field, "%s",
		                why);
		return;
	}
	if (c->t.webhook && !callback_enabled()) {
		api_reply_error(rq, 400, "invalid_field", "notify.webhook",
		                "webhook notifications are signed with [api] callback_secret_file, "
		                "which is not set");
		return;
	}
	if (!api_store_ready(rq))
		return;
	json_t *j = desk_team_json(&c->t);
	char *txt = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	api_hold(rq);
	if (create)
		store_desk_team_create(st_of(rq), &c->t, txt, now_ms(), on_team_written, rq);
	else
		store_desk_team_put(st_of(rq), &c->t, txt, now_ms(), on_team_written, rq);
	free(txt);
}

static void h_team_create(struct api_req *rq)
{
	team_write(rq, 1);
}

static void h_team_put(struct api_req *rq)
{
	if (param_team(rq))
		team_write(rq, 0);
}

static void h_team_get(struct api_req *rq)
{
	if (!param_team(rq) || !api_store_ready(rq))
		return;
	api_hold(rq);
	store_desk_team_get(st_of(rq), api_param(rq, "id"), on_team_read, rq);
}

static void on_teams_listed(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		json_t *items = json_array();
		const char *next = NULL;
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
			next = reply_str(rep->element[0]);
			const redisReply *a = rep->element[1];
			for (size_t i = 0; a->type == REDIS_REPLY_ARRAY && i < a->elements; i++) {
				json_t *o = team_json(a->element[i]);
				if (o)
					json_array_append_new(items, o);
			}
		}
		api_crud_reply_page(rq, items, next);
	}
	api_release(rq);
}

static void h_team_list(struct api_req *rq)
{
	int64_t limit;
	const char *cursor;
	if (!api_crud_list_args(rq, DESK_LIST_DEFAULT, DESK_LIST_MAX, desk_id_valid, &limit,
	                        &cursor) ||
	    !api_store_ready(rq))
		return;
	api_hold(rq);
	store_desk_team_list(st_of(rq), cursor, (int)limit, on_teams_listed, rq);
}

static void on_team_deleted(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	const char *s = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements
	                    ? reply_str(rep->element[0])
	                    : NULL;
	if (api_reply_redis_failure(rq, rep)) {
		/* answered */
	} else if (s && strcmp(s, "ok") == 0) {
		log_info("desk", "team=%s deleted by=%s", api_param(rq, "id"),
		         log_q(api_token_name(rq)));
		api_reply_raw(rq, 204, NULL, NULL, 0);
	} else if (s && strcmp(s, "not_found") == 0) {
		api_reply_error(rq, 404, "not_found", NULL, "no such team");
	} else if (s && strcmp(s, "in_use") == 0 && rep->elements > 1) {
		api_reply_error(rq, 409, "conflict", NULL,
		                "the routing rules name this team (%s): change them first",
		                reply_str(rep->element[1]) ? reply_str(rep->element[1]) : "");
	} else {
		api_reply_error(rq, 500, "internal", NULL, "unexpected answer from the store");
	}
	api_release(rq);
}

static void h_team_delete(struct api_req *rq)
{
	if (!param_team(rq) || !api_store_ready(rq))
		return;
	api_hold(rq);
	store_desk_team_delete(st_of(rq), api_param(rq, "id"), on_team_deleted, rq);
}

struct stats_ctx {
	int64_t days;
};

static void on_stats(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	struct stats_ctx *c = api_data(rq);
	if (!api_reply_redis_failure(rq, rep)) {
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 5 ||
		    rep->element[4]->type != REDIS_REPLY_ARRAY) {
			api_reply_error(rq, 500, "internal", NULL,
			                "unexpected answer from the store");
		} else {
			const redisReply *fr = rep->element[4];
			int64_t *ms = xcalloc(fr->elements + 1, sizeof *ms);
			size_t n = 0;
			for (size_t i = 0; i < fr->elements; i++) {
				const char *m = reply_str(fr->element[i]);
				const char *colon = m ? strrchr(m, ':') : NULL;
				if (colon && parse_i64(colon + 1, 0, INT64_MAX, &ms[n]) == 0)
					n++;
			}
			struct desk_frt f;
			desk_frt_compute(ms, n, &f);
			free(ms);
			json_t *counts = json_object();
			for (int s = 0; s < DESK_STATES; s++)
				json_object_set_new(
				    counts, desk_state_name((enum desk_state)s),
				    json_integer(rep->element[s]->type == REDIS_REPLY_INTEGER
				                     ? rep->element[s]->integer
				                     : 0));
			json_t *o = json_object();
			json_object_set_new(o, "team", json_string(api_param(rq, "id")));
			json_object_set_new(o, "days", json_integer(c->days));
			json_object_set_new(o, "tickets", counts);
			json_object_set_new(
			    o, "first_response",
			    json_pack("{s:I, s:o, s:o, s:o}", "count", (json_int_t)f.n, "p50_ms",
			              f.n ? json_integer(f.p50) : json_null(), "p90_ms",
			              f.n ? json_integer(f.p90) : json_null(), "mean_ms",
			              f.n ? json_integer((json_int_t)(f.mean + 0.5))
			                  : json_null()));
			api_reply_json(rq, 200, o);
		}
	}
	api_release(rq);
}

static void h_team_stats(struct api_req *rq)
{
	if (!param_team(rq))
		return;
	struct stats_ctx *c = xcalloc(1, sizeof *c);
	c->days = DESK_STATS_DAYS;
	api_set_data(rq, c, free);
	const char *q = api_query(rq, "days");
	if (q && parse_i64(q, 1, DESK_STATS_DAYS_MAX, &c->days) < 0) {
		api_reply_error(rq, 400, "invalid_field", "days", "days is 1..%d",
		                DESK_STATS_DAYS_MAX);
		return;
	}
	if (!api_store_ready(rq))
		return;
	api_hold(rq);
	store_desk_stats(st_of(rq), api_param(rq, "id"), now_ms() - c->days * 86400000LL,
	                 DESK_STATS_SAMPLES, on_stats, rq);
}

/* ---------------------------------------------------------------- rules */

static json_t *rules_answer(const char *json, const char *v, const char *updated)
{
	json_t *o = json && *json ? json_loads(json, 0, NULL) : NULL;
	if (!json_is_object(o)) {
		json_decref(o);
		o = json_pack("{s:[], s:n}", "rules", "default_team");
	}
	int64_t n = 0, ms = -1;
	if (v && parse_i64(v, 0, INT64_MAX, &n) < 0)
		n = 0;
	json_object_set_new(o, "v", json_integer(n));
	if (updated && parse_i64(updated, 0, INT64_MAX, &ms) == 0) {
		char t[40];
		fmt_time(ms, t, sizeof t);
		json_object_set_new(o, "updated_at", json_string(t));
	} else {
		json_object_set_new(o, "updated_at", json_null());
	}
	return o;
}

static void on_rules_read(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)
			api_reply_error(rq, 500, "internal", NULL,
			                "unexpected answer from the store");
		else
			api_reply_json(rq, 200,
			               rules_answer(reply_str(rep->element[0]),
			                            reply_str(rep->element[1]),
			                            reply_str(rep->element[2])));
	}
	api_release(rq);
}

static void h_rules_get(struct api_req *rq)
{
	if (!api_store_ready(rq))
		return;
	api_hold(rq);
	store_desk_rules_get(st_of(rq), on_rules_read, rq);
}

struct rules_ctx {
	struct desk_rules r;
};

static void rules_ctx_free(void *p)
{
	struct rules_ctx *c = p;
	desk_rules_free(&c->r);
	free(c);
}

static void on_rules_written(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	struct rules_ctx *c = api_data(rq);
	const char *s = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements
	                    ? reply_str(rep->element[0])
	                    : NULL;
	if (api_reply_redis_failure(rq, rep)) {
		/* answered */
	} else if (s && strcmp(s, "unknown_team") == 0 && rep->elements > 1) {
		const char *team = reply_str(rep->element[1]) ? reply_str(rep->element[1]) : "";
		char field[48] = "default_team";
		for (size_t i = 0; i < c->r.n; i++)
			if (strcmp(c->r.rule[i].team, team) == 0) {
				snprintf(field, sizeof field, "rules[%zu].team", i);
				break;
			}
		api_reply_error(rq, 400, "invalid_field", field, "no team %s: create it first",
		                team);
	} else if (s && strcmp(s, "ok") == 0) {
		log_info("desk", "rules replaced rules=%zu by=%s", c->r.n,
		         log_q(api_token_name(rq)));
		api_hold(rq);
		store_desk_rules_get(st_of(rq), on_rules_read, rq);
	} else {
		api_reply_error(rq, 500, "internal", NULL, "unexpected answer from the store");
	}
	api_release(rq);
}

static void h_rules_put(struct api_req *rq)
{
	struct rules_ctx *c = xcalloc(1, sizeof *c);
	api_set_data(rq, c, rules_ctx_free);
	char field[96], why[200];
	if (desk_rules_parse(api_json(rq), &c->r, field, sizeof field, why, sizeof why) < 0) {
		api_reply_error(rq, 400,
		                strcmp(field, "rules") == 0 &&
		                        !json_object_get(api_json(rq), "rules")
		                    ? "missing_field"
		                    : "invalid_field",
		                field, "%s", why);
		return;
	}
	if (!api_store_ready(rq))
		return;
	json_t *j = desk_rules_json(&c->r);
	char *txt = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	api_hold(rq);
	store_desk_rules_put(st_of(rq), &c->r, txt, now_ms(), on_rules_written, rq);
	free(txt);
}

/* ---------------------------------------------------------------- tickets */

static void on_ticket_read(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		privacy_open_reply(rep);
		json_t *o = rep->type == REDIS_REPLY_ARRAY && rep->elements == 2
		                ? ticket_json(rep->element[0])
		                : NULL;
		if (!o) {
			api_reply_error(rq, 404, "not_found", NULL, "no such ticket");
		} else {
			json_t *conv = json_array();
			const redisReply *a = rep->element[1];
			for (size_t i = 0; a->type == REDIS_REPLY_ARRAY && i < a->elements; i++) {
				json_t *e = conv_json(reply_str(a->element[i]));
				if (e)
					json_array_append_new(conv, e);
			}
			json_object_set_new(o, "conversation", conv);
			api_reply_json(rq, 200, o);
		}
	}
	api_release(rq);
}

static void h_ticket_get(struct api_req *rq)
{
	if (!param_ticket(rq) || !api_store_ready(rq))
		return;
	api_hold(rq);
	store_desk_ticket_get(st_of(rq), api_param(rq, "id"), on_ticket_read, rq);
}

static void on_tickets_listed(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		privacy_open_reply(rep);
		json_t *items = json_array();
		const char *next = NULL;
		if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
			next = reply_str(rep->element[0]);
			const redisReply *a = rep->element[1];
			for (size_t i = 0; a->type == REDIS_REPLY_ARRAY && i < a->elements; i++) {
				json_t *o = ticket_json(a->element[i]); /* NULL: erased */
				if (o)
					json_array_append_new(items, o);
			}
		}
		api_crud_reply_page(rq, items, next);
	}
	api_release(rq);
}

static void h_ticket_list(struct api_req *rq)
{
	int64_t limit;
	const char *cursor;
	if (!api_crud_list_args(rq, DESK_LIST_DEFAULT, DESK_LIST_MAX, id_valid, &limit, &cursor))
		return;
	const char *team = api_query(rq, "team"), *state = api_query(rq, "state");
	if (team && *team && !desk_id_valid(team)) {
		api_reply_error(rq, 400, "invalid_field", "team", "a team id expected");
		return;
	}
	if (state && *state && desk_state_parse(state) < 0) {
		api_reply_error(rq, 400, "invalid_field", "state",
		                "open, assigned, answered or closed expected");
		return;
	}
	if (!api_store_ready(rq))
		return;
	api_hold(rq);
	store_desk_ticket_list(st_of(rq), team, state, cursor, (int)limit, on_tickets_listed, rq);
}

/* The operator: the body's "operator", else the token's name. */
static int operator_of(struct api_req *rq, int required, const char **out)
{
	json_t *v = json_object_get(api_json(rq), "operator");
	if (!v || json_is_null(v)) {
		if (required) {
			api_reply_error(rq, 400, "missing_field", "operator",
			                "who takes the ticket");
			return 0;
		}
		*out = api_token_name(rq);
		return 1;
	}
	const char *s = json_string_value(v);
	if (!s || !*s || json_string_length(v) > DESK_OPERATOR_MAX ||
	    strlen(s) != json_string_length(v) || text_has_ctl(s, 0)) {
		api_reply_error(rq, 400, "invalid_field", "operator",
		                "1..%d bytes without control characters expected",
		                DESK_OPERATOR_MAX);
		return 0;
	}
	*out = s;
	return 1;
}

static void on_transition(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	const char *s = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements
	                    ? reply_str(rep->element[0])
	                    : NULL;
	if (api_reply_redis_failure(rq, rep)) {
		/* answered */
	} else if (s && strcmp(s, "not_found") == 0) {
		api_reply_error(rq, 404, "not_found", NULL, "no such ticket");
	} else if (s && strcmp(s, "conflict") == 0 && rep->elements > 1) {
		api_reply_error(rq, 409, "conflict", "state", "the ticket is %s",
		                reply_str(rep->element[1]) ? reply_str(rep->element[1]) : "?");
	} else if (s && strcmp(s, "ok") == 0 && rep->elements > 1) {
		privacy_open_reply(rep);
		json_t *o = ticket_json(rep->element[1]);
		log_info("desk", "ticket=%s state=%s by=%s", api_param(rq, "id"),
		         hash_get(rep->element[1], "state") ? hash_get(rep->element[1], "state")
		                                            : "?",
		         log_q(api_token_name(rq)));
		if (o)
			api_reply_json(rq, 200, o);
		else
			api_reply_error(rq, 404, "not_found", NULL, "no such ticket");
	} else {
		api_reply_error(rq, 500, "internal", NULL, "unexpected answer from the store");
	}
	api_release(rq);
}

static void h_assign(struct api_req *rq)
{
	const char *op;
	if (!param_ticket(rq) || !operator_of(rq, 1, &op) || !api_store_ready(rq))
		return;
	api_hold(rq);
	store_desk_assign(st_of(rq), api_param(rq, "id"), now_ms(), op, on_transition, rq);
}

static void h_close(struct api_req *rq)
{
	if (!param_ticket(rq) || !api_store_ready(rq))
		return;
	api_hold(rq);
	store_desk_close(st_of(rq), api_param(rq, "id"), now_ms(), api_token_name(rq),
	                 on_transition, rq);
}

/* ---- answer: peek -> message -> record ---- */

struct answer_ctx {
	char *text;
	char *op;
	char *team;
	char *idem; /* the Idempotency-Key header, NULL when none */
	char msg[ID_LEN + 1];
};

static void answer_ctx_free(void *p)
{
	struct answer_ctx *c = p;
	free(c->text);
	free(c->op);
	free(c->team);
	free(c->idem);
	free(c);
}

/* FNV-1a 64 of the text, for the idempotency key. */
static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static void on_answered(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	struct answer_ctx *c = api_data(rq);
	const char *s = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements
	                    ? reply_str(rep->element[0])
	                    : NULL;
	if (api_reply_redis_failure(rq, rep)) {
		/* answered; a retry finds the message and records it */
	} else if (s && strcmp(s, "not_found") == 0) {
		api_reply_error(rq, 404, "not_found", NULL, "no such ticket");
	} else if (s && strcmp(s, "conflict") == 0 && rep->elements > 1) {
		log_warnx("desk", "ticket=%s answer msg=%s queued but the ticket became %s",
		          api_param(rq, "id"), c->msg,
		          reply_str(rep->element[1]) ? reply_str(rep->element[1]) : "?");
		api_reply_error(rq, 409, "conflict", "state",
		                "the ticket is %s (the answer %s was already queued)",
		                reply_str(rep->element[1]) ? reply_str(rep->element[1]) : "?",
		                c->msg);
	} else if (s && (strcmp(s, "ok") == 0 || strcmp(s, "dup") == 0) && rep->elements == 3) {
		int64_t fr =
		    rep->element[2]->type == REDIS_REPLY_INTEGER ? rep->element[2]->integer : -1;
		if (strcmp(s, "ok") == 0 && fr >= 0)
			desk_notify_first_response(c->team, fr);
		privacy_open_reply(rep);
		json_t *o = ticket_json(rep->element[1]);
		if (!o) {
			api_reply_error(rq, 404, "not_found", NULL, "no such ticket");
		} else {
			json_object_set_new(o, "message_id", json_string(c->msg));
			log_info("desk", "ticket=%s answered msg=%s by=%s first_response_ms=%lld",
			         api_param(rq, "id"), c->msg, log_q(c->op), (long long)fr);
			api_reply_json(rq, 200, o);
		}
	} else {
		api_reply_error(rq, 500, "internal", NULL, "unexpected answer from the store");
	}
	api_release(rq);
}

static void on_answer_msg(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	struct answer_ctx *c = api_data(rq);
	const char *s = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements
	                    ? reply_str(rep->element[0])
	                    : NULL;
	if (api_reply_redis_failure(rq, rep)) {
		/* answered */
	} else if (s && strcmp(s, "dup") == 0 && rep->elements > 1 && reply_str(rep->element[1])) {
		snprintf(c->msg, sizeof c->msg, "%s", reply_str(rep->element[1]));
		s = "ok";
	} else if (s && strcmp(s, "no_contact") == 0) {
		api_reply_error(rq, 409, "conflict", "contact_id",
		                "the ticket's contact was deleted: nobody to answer");
	} else if (!s || strcmp(s, "ok") != 0) {
		api_reply_error(rq, 500, "internal", NULL, "unexpected answer from the store");
	}
	if (!api_replied(rq) && s && strcmp(s, "ok") == 0) {
		struct app *app = api_app(rq);
		char *sealed = privacy_seal_text(c->text);
		api_hold(rq);
		store_desk_answer(app->st, api_param(rq, "id"), now_ms(), c->op, sealed, c->msg,
		                  app->cfg->contacts_timeline_max, on_answered, rq);
		free(sealed);
	}
	api_release(rq);
}

static void on_answer_peek(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	struct answer_ctx *c = api_data(rq);
	if (api_reply_redis_failure(rq, rep)) {
		api_release(rq);
		return;
	}
	const char *state = rep->type == REDIS_REPLY_ARRAY && rep->elements == 6
	                        ? reply_str(rep->element[0])
	                        : NULL;
	if (!state) {
		api_reply_error(rq, 404, "not_found", NULL, "no such ticket");
		api_release(rq);
		return;
	}
	int s = desk_state_parse(state);
	if (s < 0 || desk_next_state((enum desk_state)s, DESK_OP_ANSWER, 1) < 0) {
		api_reply_error(rq, 409, "conflict", "state", "the ticket is %s", state);
		api_release(rq);
		return;
	}
	struct app *app = api_app(rq);
	const char *cid = reply_str(rep->element[1]), *ch = reply_str(rep->element[2]);
	const char *from = reply_str(rep->element[3]);
	const char *team = reply_str(rep->element[5]);
	c->team = xstrdup(team ? team : "");
	char *addr = NULL;
	if (!cid || !*cid)
		addr = privacy_open_str(from ? from : "", from ? strlen(from) : 0, NULL, NULL);
	char idem[ID_LEN + DESK_IDEM_MAX + 32];
	if (c->idem)
		snprintf(idem, sizeof idem, "desk-answer:%s:k:%s", api_param(rq, "id"), c->idem);
	else
		snprintf(idem, sizeof idem, "desk-answer:%s:t:%016llx", api_param(rq, "id"),
		         (unsigned long long)fnv1a(c->text));
	int64_t now = now_ms();
	const char *fields[] = {"text", c->text, "tk", api_param(rq, "id")};
	struct msg_new m = {.contact_id = cid && *cid ? cid : NULL,
	                    .addr_kind = ch,
	                    .addr = addr ? addr : "",
	                    .lane = ch ? ch : "sms",
	                    .channel = ch ? ch : "sms",
	                    .category = "transactional",
	                    .idem = idem,
	                    .idem_ttl_s = DESK_ANSWER_IDEM_TTL_S,
	                    .now = now,
	                    .due = now,
	                    .expires = now + app->cfg->sched_message_ttl_ms,
	                    .fields = fields,
	                    .nfields = ARRAY_SIZE(fields)};
	api_hold(rq);
	store_msg_create(app->st, &m, c->msg, on_answer_msg, rq);
	free(addr);
	api_release(rq);
}

static void h_answer(struct api_req *rq)
{
	if (!param_ticket(rq))
		return;
	json_t *t = json_object_get(api_json(rq), "text");
	if (!t || json_is_null(t)) {
		api_reply_error(rq, 400, "missing_field", "text", "the answer's text is required");
		return;
	}
	const char *s = json_string_value(t);
	if (!s || !*s || json_string_length(t) > DESK_TEXT_MAX ||
	    strlen(s) != json_string_length(t) || text_has_ctl(s, 1)) {
		api_reply_error(rq, 400, "invalid_field", "text",
		                "1..%d bytes of text expected (line breaks allowed)",
		                DESK_TEXT_MAX);
		return;
	}
	const char *op;
	if (!operator_of(rq, 0, &op))
		return;
	const char *key = api_header(rq, "Idempotency-Key");
	if (key) {
		size_t n = strlen(key);
		int ok = n > 0 && n <= DESK_IDEM_MAX;
		for (size_t i = 0; ok && i < n; i++)
			ok = key[i] > 0x20 && key[i] < 0x7f;
		if (!ok) {
			api_reply_error(rq, 400, "invalid_field", "Idempotency-Key",
			                "1..%d printable ASCII characters", DESK_IDEM_MAX);
			return;
		}
	}
	if (!api_store_ready(rq))
		return;
	struct answer_ctx *c = xcalloc(1, sizeof *c);
	c->text = xstrdup(s);
	c->op = xstrdup(op);
	c->idem = key ? xstrdup(key) : NULL;
	api_set_data(rq, c, answer_ctx_free);
	api_hold(rq);
	store_desk_peek(st_of(rq), api_param(rq, "id"), on_answer_peek, rq);
}

const struct api_route api_desk_routes[] = {
    {"POST", "/v1/teams", ROLE_ADMIN, API_BODY_JSON, h_team_create, NULL, NULL},
    {"GET", "/v1/teams", ROLE_VIEWER, API_BODY_NONE, h_team_list, NULL, NULL},
    {"GET", "/v1/teams/{id}", ROLE_VIEWER, API_BODY_NONE, h_team_get, NULL, NULL},
    {"PUT", "/v1/teams/{id}", ROLE_ADMIN, API_BODY_JSON, h_team_put, NULL, NULL},
    {"DELETE", "/v1/teams/{id}", ROLE_ADMIN, API_BODY_NONE, h_team_delete, NULL, NULL},
    {"GET", "/v1/teams/{id}/stats", ROLE_VIEWER, API_BODY_NONE, h_team_stats, NULL, NULL},
    {"GET", "/v1/desk/rules", ROLE_VIEWER, API_BODY_NONE, h_rules_get, NULL, NULL},
    {"PUT", "/v1/desk/rules", ROLE_ADMIN, API_BODY_JSON, h_rules_put, NULL, NULL},
    {"GET", "/v1/tickets", ROLE_VIEWER, API_BODY_NONE, h_ticket_list, NULL, NULL},
    {"GET", "/v1/tickets/{id}", ROLE_VIEWER, API_BODY_NONE, h_ticket_get, NULL, NULL},
    {"POST", "/v1/tickets/{id}/assign", ROLE_MARKETER, API_BODY_JSON, h_assign, NULL, NULL},
    {"POST", "/v1/tickets/{id}/answer", ROLE_MARKETER, API_BODY_JSON, h_answer, NULL, NULL},
    {"POST", "/v1/tickets/{id}/close", ROLE_MARKETER, API_BODY_NONE, h_close, NULL, NULL},
};
const size_t api_desk_nroutes = ARRAY_SIZE(api_desk_routes);
