/*
 * api_campaigns.c - /v1/campaigns: drafts (create, replace, delete), the
 * lifecycle verbs (launch, pause, resume, cancel), stats with ROI and lift
 * over the control group, and a side-by-side comparison.  Validation is
 * campaign.c's; a launch freezes the segment and templates into the
 * campaign after checking that they parse.  Knows no key names.
 *
 * Limits: list pages of 1..200; compare up to 10 campaigns.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "campaign.h"
#include "campaign_run.h"
#include "log.h"
#include "segment.h"
#include "text.h"
#include "tplset.h"
#include "util.h"

#define COMPARE_MAX 10

static int id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

static int path_id(struct api_req *rq, const char **id)
{
	*id = api_param(rq, "id");
	if (!id_ok(*id)) {
		api_reply_error(rq, 404, "not_found", "id", "no such campaign");
		return 0;
	}
	return 1;
}

/* Field/value pairs that the runner and the scripts read without parsing
 * the JSON again. */
static void add_fields(struct argv *a, const struct campaign *c)
{
	argv_add(a, "name");
	argv_add(a, c->name);
	argv_add(a, "channel");
	argv_add(a, c->channel);
	argv_add(a, "category");
	argv_add(a, c->category);
	argv_add(a, "rate");
	argv_addll(a, c->rate_limit);
	argv_add(a, "win");
	argv_addll(a, c->attribution_ms);
	if (c->start_ms > 0) {
		argv_add(a, "start");
		argv_addll(a, c->start_ms);
	}
	if (c->budget_c > 0) {
		argv_add(a, "budget_c");
		argv_addll(a, c->budget_c);
		argv_add(a, "currency");
		argv_add(a, c->currency);
	}
	if (c->forward_to[0]) {
		argv_add(a, "fwd");
		argv_add(a, c->forward_to);
	}
	if (c->every) {
		argv_add(a, "rec");
		argv_add(a, "1");
	}
	if (c->local_time[0]) {
		argv_add(a, "lt");
		argv_add(a, c->local_time);
		argv_add(a, "ld");
		argv_add(a, c->local_date);
	}
}

/* Create / replace ------------------------------------------------------- */

struct write_ctx {
	struct api_req *rq;
	char id[72];
	int create;
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
		if (st && strcmp(st, "ok") == 0) {
			api_reply_json(rq, w->create ? 201 : 200,
			               json_pack("{s:s, s:s, s:I}", "id", w->id, "state", "draft",
			                         "version", (json_int_t)rep->element[1]->integer));
		} else if (st && strcmp(st, "exists") == 0) {
			api_reply_error(rq, 409, "conflict", "id",
			                "a campaign with this id exists");
		} else if (st && strcmp(st, "not_found") == 0) {
			api_reply_error(rq, 404, "not_found", "id", "no such campaign");
		} else if (st && strcmp(st, "state") == 0) {
			api_reply_error(rq, 409, "conflict", "state",
			                "only a draft can be changed (state is %s)",
			                reply_str(rep->element[1]));
		} else {
			api_reply_error(rq, 503, "unavailable", NULL, "unexpected store answer");
		}
	}
	api_release(rq);
	free(w);
}

static void write_campaign(struct api_req *rq, const char *id, int create)
{
	struct app *app = api_app(rq);
	json_t *body = api_json(rq);
	struct campaign c;
	const char *field, *reason;
	if (camp_parse(body, &c, &field, &reason) < 0) {
		api_reply_error(rq, 400, "invalid_field", field, "%s", reason);
		return;
	}
	if (!api_store_ready(rq)) {
		camp_release(&c);
		return;
	}
	struct write_ctx *w = xcalloc(1, sizeof *w);
	w->rq = rq;
	w->create = create;
	snprintf(w->id, sizeof w->id, "%s", id);
	char *text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	unsigned char rnd[16];
	char seed[33];
	random_bytes(rnd, sizeof rnd);
	hex_encode(rnd, sizeof rnd, seed);
	struct argv a;
	argv_init(&a);
	argv_add(&a, create ? "create" : "put");
	argv_add(&a, id);
	argv_addll(&a, now_ms());
	argv_add(&a, text);
	argv_add(&a, seed);
	add_fields(&a, &c);
	api_hold(rq);
	store_eval(app->st, SCRIPT_CAMP_WRITE, &a, on_written, w);
	argv_free(&a);
	free(text);
	camp_release(&c);
}

static void h_create(struct api_req *rq)
{
	json_t *idj = json_object_get(api_json(rq), "id");
	char id[ID_LEN + 1];
	if (idj) {
		if (!json_is_string(idj) || !id_ok(json_string_value(idj))) {
			api_reply_error(rq, 400, "invalid_field", "id", "1..64 of [A-Za-z0-9_-]");
			return;
		}
		write_campaign(rq, json_string_value(idj), 1);
		return;
	}
	id_new(id, now_ms());
	write_campaign(rq, id, 1);
}

static void h_put(struct api_req *rq)
{
	const char *id;
	if (path_id(rq, &id))
		write_campaign(rq, id, 0);
}

/* Read ------------------------------------------------------------------- */

static json_t *json_or_null(const char *text)
{
	json_t *j = text ? json_loads(text, 0, NULL) : NULL;
	return j ? j : json_null();
}

static json_t *time_or_null(const redisReply *h, const char *f)
{
	int64_t ms = hash_get_i64(h, f, 0);
	if (ms <= 0)
		return json_null();
	char t[40];
	fmt_time(ms, t, sizeof t);
	return json_string(t);
}

static json_t *camp_json(const redisReply *h)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(hash_get(h, "id") ? hash_get(h, "id") : ""));
	json_object_set_new(o, "state",
	                    json_string(hash_get(h, "state") ? hash_get(h, "state") : ""));
	const char *reason = hash_get(h, "reason");
	json_object_set_new(o, "reason", reason && *reason ? json_string(reason) : json_null());
	json_object_set_new(o, "version", json_integer(hash_get_i64(h, "v", 0)));
	json_object_set_new(o, "definition", json_or_null(hash_get(h, "json")));
	json_object_set_new(o, "created_at", time_or_null(h, "created"));
	json_object_set_new(o, "updated_at", time_or_null(h, "updated"));
	json_object_set_new(o, "fanout_done", json_boolean(hash_get_i64(h, "fan_done", 0) == 1));
	return o;
}

struct get_ctx {
	struct api_req *rq;
	json_t *out;
	char id[72];
	int phase;
};

static void on_history(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct get_ctx *g = arg;
	struct api_req *rq = g->rq;
	if (!api_reply_redis_failure(rq, rep)) {
		json_t *h = json_array();
		for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
			json_t *e = json_or_null(reply_str(rep->element[i]));
			json_t *at = json_object_get(e, "at");
			if (json_is_integer(at)) {
				char t[40];
				fmt_time(json_integer_value(at), t, sizeof t);
				json_object_set_new(e, "at", json_string(t));
			}
			json_array_append_new(h, e);
		}
		json_object_set_new(g->out, "history", h);
		api_reply_json(rq, 200, g->out);
		g->out = NULL;
	}
	json_decref(g->out);
	api_release(rq);
	free(g);
}

static void on_camp_got(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct get_ctx *g = arg;
	struct api_req *rq = g->rq;
	struct app *app = api_app(rq);
	if (!api_reply_redis_failure(rq, rep)) {
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
			api_reply_error(rq, 404, "not_found", "id", "no such campaign");
		} else {
			g->out = camp_json(rep);
			store_camp_history(app->st, g->id, on_history, g);
			return;
		}
	}
	api_release(rq);
	free(g);
}

static void h_get(struct api_req *rq)
{
	const char *id;
	if (!path_id(rq, &id) || !api_store_ready(rq))
		return;
	struct get_ctx *g = xcalloc(1, sizeof *g);
	g->rq = rq;
	snprintf(g->id, sizeof g->id, "%s", id);
	api_hold(rq);
	store_camp_get(((struct app *)api_app(rq))->st, id, on_camp_got, g);
}

/* The list: ids from the index, then name, state and times of each (one
 * pipelined HMGET per id; at most 200). */
struct list_ctx {
	struct api_req *rq;
	json_t *items;
	int pending, limit, n;
	char last[72];
};

static void list_done(struct list_ctx *l)
{
	api_reply_json(
	    l->rq, 200,
	    json_pack("{s:o, s:o}", "items", l->items, "next_cursor",
	              l->n >= l->limit && l->last[0] ? json_string(l->last) : json_null()));
	api_release(l->rq);
	free(l);
}

struct list_item {
	struct list_ctx *l;
	json_t *o; /* borrowed from l->items */
};

/* HMGET name state created updated channel */
static void on_item(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct list_item *it = arg;
	struct list_ctx *l = it->l;
	if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 5) {
		const char *name = reply_str(rep->element[0]), *st = reply_str(rep->element[1]);
		const char *ch = reply_str(rep->element[4]);
		json_object_set_new(it->o, "name", name ? json_string(name) : json_null());
		json_object_set_new(it->o, "state", st ? json_string(st) : json_null());
		json_object_set_new(it->o, "channel", ch ? json_string(ch) : json_null());
		int64_t ms[2];
		const char *keys[2] = {"created_at", "updated_at"};
		for (int k = 0; k < 2; k++) {
			const char *v = reply_str(rep->element[2 + k]);
			if (v && parse_i64(v, 1, INT64_MAX, &ms[k]) == 0) {
				char t[40];
				fmt_time(ms[k], t, sizeof t);
				json_object_set_new(it->o, keys[k], json_string(t));
			} else {
				json_object_set_new(it->o, keys[k], json_null());
			}
		}
	}
	free(it);
	if (--l->pending == 0)
		list_done(l);
}

static void on_listed(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (api_reply_redis_failure(rq, rep)) {
		api_release(rq);
		return;
	}
	struct list_ctx *l = xcalloc(1, sizeof *l);
	l->rq = rq;
	l->items = json_array();
	l->limit = (int)(intptr_t)api_data(rq);
	struct app *app = api_app(rq);
	for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
		const char *id = reply_str(rep->element[i]);
		if (!id)
			continue;
		snprintf(l->last, sizeof l->last, "%s", id);
		json_array_append_new(l->items, json_pack("{s:s}", "id", id));
		l->n++;
	}
	if (l->n == 0) {
		list_done(l);
		return;
	}
	l->pending = l->n;
	for (int i = 0; i < l->n; i++) {
		struct list_item *it = xcalloc(1, sizeof *it);
		it->l = l;
		it->o = json_array_get(l->items, (size_t)i);
		store_camp_summary(app->st, json_string_value(json_object_get(it->o, "id")),
		                   on_item, it);
	}
}

static void h_list(struct api_req *rq)
{
	const char *cursor = api_query(rq, "cursor"), *ls = api_query(rq, "limit");
	int64_t limit = 50;
	if (ls && parse_i64(ls, 1, 200, &limit) < 0) {
		api_reply_error(rq, 400, "invalid_field", "limit", "1..200");
		return;
	}
	if (cursor && *cursor && !id_ok(cursor)) {
		api_reply_error(rq, 400, "invalid_field", "cursor", "a campaign id");
		return;
	}
	if (!api_store_ready(rq))
		return;
	api_set_data(rq, (void *)(intptr_t)limit, NULL);
	api_hold(rq);
	store_camp_list(((struct app *)api_app(rq))->st, cursor, (int)limit, on_listed, rq);
}

static void on_deleted(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		if (rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
			api_reply_raw(rq, 204, "application/json", "", 0);
		else if (rep->type == REDIS_REPLY_INTEGER && rep->integer == -1)
			api_reply_error(rq, 409, "conflict", "state",
			                "cancel the campaign first; only draft, completed or "
			                "cancelled campaigns can be deleted");
		else
			api_reply_error(rq, 404, "not_found", "id", "no such campaign");
	}
	api_release(rq);
}

static void h_delete(struct api_req *rq)
{
	const char *id;
	if (!path_id(rq, &id) || !api_store_ready(rq))
		return;
	api_hold(rq);
	store_camp_delete(((struct app *)api_app(rq))->st, id, on_deleted, rq);
}

/* Lifecycle -------------------------------------------------------------- */

struct verb_ctx {
	struct api_req *rq;
	char id[72];
	const char *verb;
	struct campaign c;
	int have_c;
};

static void verb_free(struct verb_ctx *v)
{
	if (v->have_c)
		camp_release(&v->c);
	free(v);
}

static void on_state(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct verb_ctx *v = arg;
	struct api_req *rq = v->rq;
	struct app *app = api_app(rq);
	if (!api_reply_redis_failure(rq, rep)) {
		const char *st = rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
		                     ? reply_str(rep->element[0])
		                     : NULL;
		if (st && strcmp(st, "ok") == 0 && rep->elements >= 3) {
			log_info("campaign", "camp=%s verb=%s from=%s to=%s by=%s", v->id, v->verb,
			         reply_str(rep->element[1]), reply_str(rep->element[2]),
			         log_q(api_token_name(rq)));
			camp_runner_poke(app->camps);
			api_reply_json(rq, 200,
			               json_pack("{s:s, s:s, s:s}", "id", v->id, "from",
			                         reply_str(rep->element[1]), "state",
			                         reply_str(rep->element[2])));
		} else if (st && strcmp(st, "not_found") == 0) {
			api_reply_error(rq, 404, "not_found", "id", "no such campaign");
		} else if (st && strcmp(st, "bad_transition") == 0) {
			api_reply_error(rq, 409, "conflict", "state", "cannot %s a %s campaign",
			                v->verb, reply_str(rep->element[1]));
		} else {
			api_reply_error(rq, 503, "unavailable", NULL, "unexpected store answer");
		}
	}
	api_release(rq);
	verb_free(v);
}

static void do_state(struct verb_ctx *v, const struct argv *extra)
{
	struct api_req *rq = v->rq;
	struct app *app = api_app(rq);
	const char *reason = api_query(rq, "reason");
	struct argv a;
	argv_init(&a);
	argv_add(&a, v->id);
	argv_addll(&a, now_ms());
	argv_add(&a, v->verb);
	argv_add(&a, reason ? reason : "");
	argv_add(&a, api_token_name(rq));
	for (int i = 0; extra && i < extra->n; i++)
		argv_addn(&a, extra->v[i], extra->len[i]);
	store_eval(app->st, SCRIPT_CAMP_STATE, &a, on_state, v);
	argv_free(&a);
}

/* launch: the definition, segment and templates must all parse now. */
static void on_snap(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct verb_ctx *v = arg;
	struct api_req *rq = v->rq;
	if (api_reply_redis_failure(rq, rep)) {
		api_release(rq);
		verb_free(v);
		return;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 || !reply_str(rep->element[0])) {
		api_reply_error(rq, 404, "not_found", "id", "no such campaign");
		goto out;
	}
	const char *state = reply_str(rep->element[1]);
	if (!state || strcmp(state, "draft") != 0) {
		api_reply_error(rq, 409, "conflict", "state", "cannot launch a %s campaign",
		                state ? state : "?");
		goto out;
	}
	/* The definition was validated when written; parse it for the ids. */
	json_t *def = json_loads(reply_str(rep->element[0]), 0, NULL);
	const char *field, *reason;
	if (!def || camp_parse(def, &v->c, &field, &reason) < 0) {
		json_decref(def);
		api_reply_error(rq, 409, "conflict", "definition", "stored definition unusable");
		goto out;
	}
	json_decref(def);
	v->have_c = 1;
	json_t *segdef = v->c.segment ? json_incref(v->c.segment)
	                              : (reply_str(rep->element[2])
	                                     ? json_loads(reply_str(rep->element[2]), 0, NULL)
	                                     : NULL);
	if (!segdef) {
		api_reply_error(rq, 409, "conflict", "segment", "segment %s does not exist",
		                v->c.segment_id);
		goto out;
	}
	struct segment *seg = NULL;
	if (segment_parse(segdef, &seg, &field, &reason) < 0) {
		json_decref(segdef);
		api_reply_error(rq, 409, "conflict", "segment", "segment %s: %s",
		                field ? field : "", reason ? reason : "invalid");
		goto out;
	}
	segment_free(seg);
	json_t *tpls = json_object();
	for (int i = 0; i < v->c.nvar; i++) {
		const char *t =
		    3 + (size_t)i < rep->elements ? reply_str(rep->element[3 + i]) : NULL;
		json_t *tj = t ? json_loads(t, 0, NULL) : NULL;
		struct tplset *ts = NULL;
		struct tmpl_error terr;
		const char *tf = "";
		if (!tj || tplset_parse(tj, &ts, &tf, &terr) < 0) {
			api_reply_error(rq, 409, "conflict", "template", "template %s %s",
			                v->c.var[i].template_id,
			                tj ? "does not compile" : "does not exist");
			json_decref(tj);
			json_decref(tpls);
			json_decref(segdef);
			goto out;
		}
		tplset_free(ts);
		json_object_set_new(tpls, v->c.var[i].name, tj);
	}
	int64_t now = now_ms();
	struct argv extra;
	argv_init(&extra);
	char *s1 = json_dumps(segdef, JSON_COMPACT), *s2 = json_dumps(tpls, JSON_COMPACT);
	argv_add(&extra, "seg_json");
	argv_add(&extra, s1);
	argv_add(&extra, "tpls");
	argv_add(&extra, s2);
	argv_add(&extra, "launched");
	argv_addll(&extra, now);
	if (v->c.every) {
		int64_t first = camp_next_run(&v->c, now - 1, 0);
		if (!first) {
			argv_free(&extra);
			free(s1);
			free(s2);
			json_decref(segdef);
			json_decref(tpls);
			api_reply_error(rq, 409, "conflict", "schedule",
			                "no run left in the schedule");
			goto out;
		}
		argv_add(&extra, "start");
		argv_addll(&extra, first);
	}
	if (v->c.local_time[0] && !v->c.local_date[0]) {
		/* without a date: the launch day (UTC) */
		char t[40];
		fmt_time(now, t, sizeof t);
		t[10] = '\0';
		argv_add(&extra, "ld");
		argv_add(&extra, t);
	}
	free(s1);
	free(s2);
	json_decref(segdef);
	json_decref(tpls);
	do_state(v, &extra);
	argv_free(&extra);
	return;
out:
	api_release(rq);
	verb_free(v);
}

static void on_snap_def(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct verb_ctx *v = arg;
	struct api_req *rq = v->rq;
	struct app *app = api_app(rq);
	if (api_reply_redis_failure(rq, rep)) {
		api_release(rq);
		verb_free(v);
		return;
	}
	const char *text = rep->type == REDIS_REPLY_ARRAY && rep->elements >= 2
	                       ? reply_str(rep->element[0])
	                       : NULL;
	json_t *def = text ? json_loads(text, 0, NULL) : NULL;
	struct campaign c;
	const char *field, *reason;
	if (!def || camp_parse(def, &c, &field, &reason) < 0) {
		json_decref(def);
		api_reply_error(rq, 404, "not_found", "id", "no such campaign");
		api_release(rq);
		verb_free(v);
		return;
	}
	json_decref(def);
	struct argv a;
	argv_init(&a);
	argv_add(&a, v->id);
	argv_add(&a, c.segment_id);
	for (int i = 0; i < c.nvar; i++)
		argv_add(&a, c.var[i].template_id);
	camp_release(&c);
	store_eval(app->st, SCRIPT_CAMP_SNAP, &a, on_snap, v);
	argv_free(&a);
}

static void verb(struct api_req *rq, const char *name)
{
	const char *id;
	if (!path_id(rq, &id))
		return;
	const char *reason = api_query(rq, "reason");
	if (reason && (strlen(reason) > 200 || !utf8_valid(reason, strlen(reason)) ||
	               strpbrk(reason, "\r\n"))) {
		api_reply_error(rq, 400, "invalid_field", "reason", "up to 200 bytes on one line");
		return;
	}
	if (!api_store_ready(rq))
		return;
	struct verb_ctx *v = xcalloc(1, sizeof *v);
	v->rq = rq;
	v->verb = name;
	snprintf(v->id, sizeof v->id, "%s", id);
	api_hold(rq);
	if (strcmp(name, "launch") != 0) {
		do_state(v, NULL);
		return;
	}
	/* Read the definition (it names the segment and the templates), then
	 * what the launch freezes. */
	struct app *app = api_app(rq);
	struct argv a;
	argv_init(&a);
	argv_add(&a, id);
	argv_add(&a, "");
	store_eval(app->st, SCRIPT_CAMP_SNAP, &a, on_snap_def, v);
	argv_free(&a);
}

static void h_launch(struct api_req *rq)
{
	verb(rq, "launch");
}
static void h_pause(struct api_req *rq)
{
	verb(rq, "pause");
}
static void h_resume(struct api_req *rq)
{
	verb(rq, "resume");
}
static void h_cancel(struct api_req *rq)
{
	verb(rq, "cancel");
}

/* Stats ------------------------------------------------------------------ */

static int64_t cnt(const redisReply *h, const char *arm, const char *f)
{
	char k[96];
	if (arm)
		snprintf(k, sizeof k, "%s:%s", arm, f);
	else
		snprintf(k, sizeof k, "%s", f);
	return hash_get_i64(h, k, 0);
}

static double round4(double x)
{
	return isfinite(x) ? round(x * 10000.0) / 10000.0 : 0.0;
}

static json_t *money_json(int64_t c)
{
	char t[32];
	money_format(c, t, sizeof t);
	return json_string(t);
}

static json_t *arm_json(const redisReply *cs, const char *arm, struct camp_arm *a)
{
	memset(a, 0, sizeof *a);
	a->targeted = cnt(cs, arm, "targeted");
	a->sent = cnt(cs, arm, "sent");
	a->delivered = cnt(cs, arm, "delivered");
	a->failed = cnt(cs, arm, "failed");
	a->suppressed = cnt(cs, arm, "suppressed");
	a->replies = cnt(cs, arm, "replies");
	a->clicks = cnt(cs, arm, "clicks");
	a->clickers = cnt(cs, arm, "clickers");
	a->purchases = cnt(cs, arm, "purchases");
	a->revenue_c = cnt(cs, arm, "revenue_c");
	a->cost_micros = cnt(cs, arm, "cost_micros");
	json_t *o = json_object();
	if (arm)
		json_object_set_new(o, "name", json_string(arm));
	json_object_set_new(o, "targeted", json_integer(a->targeted));
	if (!arm) {
		json_object_set_new(o, "queued", json_integer(cnt(cs, NULL, "queued")));
		json_object_set_new(o, "cancelled", json_integer(cnt(cs, NULL, "cancelled")));
	}
	json_object_set_new(o, "sent", json_integer(a->sent));
	json_object_set_new(o, "delivered", json_integer(a->delivered));
	json_object_set_new(o, "undelivered", json_integer(cnt(cs, arm, "undelivered")));
	json_object_set_new(o, "failed", json_integer(a->failed));
	json_object_set_new(o, "expired", json_integer(cnt(cs, arm, "expired")));
	json_object_set_new(o, "suppressed", json_integer(a->suppressed));
	json_object_set_new(o, "replies", json_integer(a->replies));
	json_object_set_new(o, "clicks", json_integer(a->clicks));
	json_object_set_new(o, "clickers", json_integer(a->clickers));
	json_object_set_new(o, "purchases", json_integer(a->purchases));
	json_object_set_new(o, "revenue", money_json(a->revenue_c));
	json_object_set_new(o, "cost", money_json((a->cost_micros + 5000) / 10000));
	json_object_set_new(o, "roi", json_real(round4(camp_roi(a))));
	json_object_set_new(o, "reply_rate", json_real(round4(camp_rate(a->replies, a->sent))));
	json_object_set_new(o, "click_rate", json_real(round4(camp_rate(a->clickers, a->sent))));
	json_object_set_new(o, "conversion_rate",
	                    json_real(round4(camp_rate(a->purchases, a->targeted))));
	json_object_set_new(
	    o, "revenue_per_contact",
	    json_real(
	        round4(a->targeted ? (double)a->revenue_c / 100.0 / (double)a->targeted : 0.0)));
	return o;
}

/* Lift of arm over control: relative difference of conversion rate and of
 * revenue per targeted contact; null when control has no base. */
static void add_lift(json_t *o, const struct camp_arm *a, const struct camp_arm *ctl)
{
	double ca = camp_rate(a->purchases, a->targeted),
	       cc = camp_rate(ctl->purchases, ctl->targeted);
	double ra = camp_rate(a->revenue_c, a->targeted),
	       rc = camp_rate(ctl->revenue_c, ctl->targeted);
	json_object_set_new(o, "conversion_lift",
	                    ctl->targeted && cc > 0 ? json_real(round4((ca - cc) / cc))
	                                            : json_null());
	json_object_set_new(o, "revenue_lift",
	                    ctl->targeted && rc > 0 ? json_real(round4((ra - rc) / rc))
	                                            : json_null());
	json_object_set_new(o, "incremental_revenue",
	                    ctl->targeted
	                        ? money_json((int64_t)llround((ra - rc) * (double)a->targeted))
	                        : json_null());
}

/* The campaign fields the report needs, copied out of its HGETALL (the
 * reply is gone by the time the counters arrive). */
static const char *const report_fields[] = {"id",       "name",     "state", "reason",
                                            "currency", "budget_c", "json"};

static const char *cp_str(const json_t *cp, const char *f)
{
	return json_string_value(json_object_get(cp, f));
}

static json_t *stats_json(const json_t *cp, const redisReply *cs)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(cp_str(cp, "id") ? cp_str(cp, "id") : ""));
	json_object_set_new(o, "name", json_string(cp_str(cp, "name") ? cp_str(cp, "name") : ""));
	json_object_set_new(o, "state",
	                    json_string(cp_str(cp, "state") ? cp_str(cp, "state") : ""));
	const char *reason = cp_str(cp, "reason");
	json_object_set_new(o, "reason", reason && *reason ? json_string(reason) : json_null());
	const char *cur = cp_str(cp, "currency");
	json_object_set_new(o, "currency", cur ? json_string(cur) : json_null());
	int64_t budget = 0;
	if (cp_str(cp, "budget_c") && parse_i64(cp_str(cp, "budget_c"), 0, INT64_MAX, &budget) < 0)
		budget = 0;
	json_object_set_new(o, "budget", budget ? money_json(budget) : json_null());
	struct camp_arm tot, ctl, a;
	json_t *t = arm_json(cs, NULL, &tot);
	json_t *byr = json_object();
	for (size_t i = 0; cs->type == REDIS_REPLY_ARRAY && i + 1 < cs->elements; i += 2) {
		const char *k = reply_str(cs->element[i]);
		if (k && strncmp(k, "suppressed:", 11) == 0)
			json_object_set_new(byr, k + 11, json_integer(hash_get_i64(cs, k, 0)));
	}
	json_object_set_new(t, "suppressed_by_reason", byr);
	json_object_set_new(o, "totals", t);
	json_t *control = arm_json(cs, "control", &ctl);
	/* the arms: every "X:targeted" other than control */
	json_t *arms = json_array();
	json_t *def = json_or_null(cp_str(cp, "json"));
	struct campaign c;
	const char *f, *r;
	if (camp_parse(def, &c, &f, &r) == 0) {
		for (int i = 0; i < c.nvar; i++) {
			json_t *aj = arm_json(cs, c.var[i].name, &a);
			json_object_set_new(aj, "template", json_string(c.var[i].template_id));
			add_lift(aj, &a, &ctl);
			json_array_append_new(arms, aj);
		}
		json_object_set_new(o, "control_percent", json_integer(c.control_percent));
		camp_release(&c);
	}
	json_decref(def);
	json_object_set_new(o, "variants", arms);
	json_object_set_new(o, "control", control);
	return o;
}

struct stats_ctx {
	struct api_req *rq;
	char ids[COMPARE_MAX][72];
	int n, i;
	json_t *cp_json; /* report_fields of the campaign, until its counters arrive */
	json_t *out;     /* array for compare */
	int compare;
	struct app *app;
};

static void stats_next(struct stats_ctx *x);

static void on_cs(struct redis *r, redisReply *rep, void *arg);

static void on_cp(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct stats_ctx *x = arg;
	struct api_req *rq = x->rq;
	if (api_reply_redis_failure(rq, rep)) {
		json_decref(x->out);
		api_release(rq);
		free(x);
		return;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0) {
		api_reply_error(rq, 404, "not_found", x->compare ? "ids" : "id",
		                "no such campaign: %s", x->ids[x->i]);
		json_decref(x->out);
		api_release(rq);
		free(x);
		return;
	}
	json_t *cp = json_object();
	for (size_t i = 0; i < ARRAY_SIZE(report_fields); i++) {
		const char *v = hash_get(rep, report_fields[i]);
		if (v)
			json_object_set_new(cp, report_fields[i], json_string(v));
	}
	x->cp_json = cp;
	store_camp_stats(x->app->st, x->ids[x->i], on_cs, x);
}

static void on_cs(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct stats_ctx *x = arg;
	struct api_req *rq = x->rq;
	if (api_reply_redis_failure(rq, rep)) {
		json_decref(x->cp_json);
		json_decref(x->out);
		api_release(rq);
		free(x);
		return;
	}
	json_t *st = stats_json(x->cp_json, rep);
	json_decref(x->cp_json);
	x->cp_json = NULL;
	if (!x->compare) {
		api_reply_json(rq, 200, st);
		api_release(rq);
		free(x);
		return;
	}
	json_array_append_new(x->out, st);
	x->i++;
	stats_next(x);
}

static void stats_next(struct stats_ctx *x)
{
	if (x->i >= x->n) {
		api_reply_json(x->rq, 200, json_pack("{s:o}", "campaigns", x->out));
		api_release(x->rq);
		free(x);
		return;
	}
	store_camp_get(x->app->st, x->ids[x->i], on_cp, x);
}

static void h_stats(struct api_req *rq)
{
	const char *id;
	if (!path_id(rq, &id) || !api_store_ready(rq))
		return;
	struct stats_ctx *x = xcalloc(1, sizeof *x);
	x->rq = rq;
	x->app = api_app(rq);
	x->n = 1;
	snprintf(x->ids[0], sizeof x->ids[0], "%s", id);
	api_hold(rq);
	stats_next(x);
}

static void h_compare(struct api_req *rq)
{
	const char *ids = api_query(rq, "ids");
	struct stats_ctx *x = xcalloc(1, sizeof *x);
	const char *p = ids;
	while (p && *p && x->n < COMPARE_MAX + 1) {
		size_t len = strcspn(p, ",");
		if (len == 0 || len > 64 || x->n == COMPARE_MAX) {
			x->n = -1;
			break;
		}
		snprintf(x->ids[x->n], sizeof x->ids[x->n], "%.*s", (int)len, p);
		if (!id_ok(x->ids[x->n])) {
			x->n = -1;
			break;
		}
		x->n++;
		p += len;
		if (*p == ',')
			p++;
	}
	if (x->n < 1) {
		free(x);
		api_reply_error(rq, 400, "invalid_field", "ids",
		                "1..%d campaign ids separated by commas", COMPARE_MAX);
		return;
	}
	if (!api_store_ready(rq)) {
		free(x);
		return;
	}
	x->rq = rq;
	x->app = api_app(rq);
	x->compare = 1;
	x->out = json_array();
	api_hold(rq);
	stats_next(x);
}

const struct api_route api_campaign_routes[] = {
    {"POST", "/v1/campaigns", ROLE_MARKETER, API_BODY_JSON, h_create, NULL, NULL},
    {"GET", "/v1/campaigns", ROLE_VIEWER, API_BODY_NONE, h_list, NULL, NULL},
    {"GET", "/v1/campaigns/compare", ROLE_VIEWER, API_BODY_NONE, h_compare, NULL, NULL},
    {"GET", "/v1/campaigns/{id}", ROLE_VIEWER, API_BODY_NONE, h_get, NULL, NULL},
    {"PUT", "/v1/campaigns/{id}", ROLE_MARKETER, API_BODY_JSON, h_put, NULL, NULL},
    {"DELETE", "/v1/campaigns/{id}", ROLE_MARKETER, API_BODY_NONE, h_delete, NULL, NULL},
    {"POST", "/v1/campaigns/{id}/launch", ROLE_MARKETER, API_BODY_NONE, h_launch, NULL, NULL},
    {"POST", "/v1/campaigns/{id}/pause", ROLE_MARKETER, API_BODY_NONE, h_pause, NULL, NULL},
    {"POST", "/v1/campaigns/{id}/resume", ROLE_MARKETER, API_BODY_NONE, h_resume, NULL, NULL},
    {"POST", "/v1/campaigns/{id}/cancel", ROLE_MARKETER, API_BODY_NONE, h_cancel, NULL, NULL},
    {"GET", "/v1/campaigns/{id}/stats", ROLE_VIEWER, API_BODY_NONE, h_stats, NULL, NULL},
};
const size_t api_campaign_nroutes = ARRAY_SIZE(api_campaign_routes);
