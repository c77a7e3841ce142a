/*
 * api_surveys.c - /v1/surveys:
 *   POST   /v1/surveys                     create (marketer)
 *   GET    /v1/surveys, /v1/surveys/{id}   list and read (viewer)
 *   PUT    /v1/surveys/{id}                replace (marketer) until it is launched
 *   DELETE /v1/surveys/{id}                (marketer) until it is launched; with
 *          ?force=true (admin) also a launched one with its results
 *   POST   /v1/surveys/{id}/launch         (marketer) to a segment (id or inline) or to
 *          the contacts a campaign was sent to; answers with the counts when done
 *   GET    /v1/surveys/{id}/results        (viewer) counts, distributions, mean, NPS,
 *          the first page of each free-text question
 *   GET    /v1/surveys/{id}/results/{question}/texts  (viewer) free texts, paged
 *   GET    /v1/surveys/{id}/results.csv    (marketer) one row per contact who answered
 * Validation and arithmetic are survey.c's, storage store_surveys.c's, the
 * launch survey_run.c's, the get, list and delete handling api_crud.c's.
 * Knows no key names.  Never logs answers.
 *
 * Limits: list pages 1..200, text pages 1..500 (20 in results, text_limit
 * 0..200), CSV pages of CSV_PAGE contacts; a launch restarts the request
 * deadline after every batch.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "api_audience.h"
#include "api_crud.h"
#include "app.h"
#include "club/survey.h"
#include "log.h"
#include "segment.h"
#include "store_surveys.h"
#include "survey_run.h"
#include "util.h"

#define LIST_DEFAULT      50
#define LIST_MAX          200
#define TEXTS_DEFAULT     20
#define TEXTS_MAX         500
#define RESULTS_TEXTS_MAX 200
#define CSV_PAGE          200
#define LAUNCH_DEADLINE   60000 /* ms per batch of a launch */

/* ---------------------------------------------------------------- output */

/* The API form from the definition hash and the counters (new reference),
 * NULL when the hash is empty or unreadable. */
static json_t *survey_json(const redisReply *h, const redisReply *counts)
{
	const char *txt = hash_get(h, "json");
	json_t *o = txt ? json_loads(txt, 0, NULL) : NULL;
	if (!json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "v", json_integer(hash_get_i64(h, "v", 0)));
	api_crud_time(o, "created_at", hash_get(h, "created"));
	api_crud_time(o, "updated_at", hash_get(h, "updated"));
	int64_t sent = hash_get_i64(counts, "sent", 0);
	json_object_set_new(o, "launched", json_boolean(sent > 0));
	json_object_set_new(o, "counts",
	                    json_pack("{s:I, s:I, s:I}", "sent", (json_int_t)sent, "started",
	                              (json_int_t)hash_get_i64(counts, "started", 0), "completed",
	                              (json_int_t)hash_get_i64(counts, "completed", 0)));
	return o;
}

static const redisReply *arr(const redisReply *rep, size_t i)
{
	return rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > i ? rep->element[i] : NULL;
}

static void reply_survey(struct api_req *rq, unsigned status, const redisReply *rep)
{
	const redisReply *h = arr(rep, 0);
	if (!h || h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
		api_reply_error(rq, 404, "not_found", NULL, "no such survey");
		return;
	}
	json_t *o = survey_json(h, arr(rep, 1));
	if (!o) {
		api_reply_error(rq, 500, "internal", NULL, "the stored survey is unreadable");
		return;
	}
	api_reply_json(rq, status, o);
}

/* ---------------------------------------------------------------- read, list, delete */

/* Ids in paths; a list cursor is the last survey id of the previous page. */
static int survey_id_ok(const char *s)
{
	return survey_id_valid(s, SURVEY_ID_MAX);
}

/* A list element {id, hash, counters}. */
static json_t *list_item(const redisReply *e)
{
	return survey_json(e->element[1], e->element[2]);
}

/* DELETE ?force=: 1 true, 0 false or absent, -1 neither. */
static int query_force(struct api_req *rq)
{
	const char *f = api_query(rq, "force");
	if (!f || strcmp(f, "false") == 0 || strcmp(f, "0") == 0)
		return 0;
	return strcmp(f, "true") == 0 || strcmp(f, "1") == 0 ? 1 : -1;
}

/* With ?force=true (h_delete checked the role) a launched survey goes
 * with its results. */
static void survey_delete(struct api_req *rq, const char *id, redis_cb cb, void *arg)
{
	store_survey_delete(((struct app *)api_app(rq))->st, id, query_force(rq) == 1, cb, arg);
}

/* {'ok', contacts it was sent to} */
static void survey_deleted(struct api_req *rq, const redisReply *rep)
{
	log_info("survey", "survey=%s deleted sent=%lld by=%s", log_q(api_param(rq, "id")),
	         arr(rep, 1) ? (long long)arr(rep, 1)->integer : 0LL, log_q(api_token_name(rq)));
}

/* {'launched', contacts}: only ?force=true deletes it. */
static int survey_refused(struct api_req *rq, const char *st, const redisReply *rep)
{
	if (strcmp(st, "launched") != 0)
		return 0;
	api_reply_error(rq, 409, "conflict", NULL,
	                "the survey was launched to %lld contacts: delete it with "
	                "?force=true (admin) to drop its results too",
	                arr(rep, 1) ? (long long)arr(rep, 1)->integer : 0LL);
	return 1;
}

static const struct api_crud surveys = {.noun = "survey",
                                        .id_ok = survey_id_ok,
                                        .list_default = LIST_DEFAULT,
                                        .list_max = LIST_MAX,
                                        .read = store_survey_get,
                                        .reply = reply_survey,
                                        .list = store_survey_list,
                                        .list_fields = 3,
                                        .item = list_item,
                                        .del = survey_delete,
                                        .deleted = survey_deleted,
                                        .refused = survey_refused};

/* The definition in a store_survey_get() reply (caller frees); NULL after
 * answering (the store's failure, 404, or 500 when unreadable). */
static struct survey_def *stored_survey(struct api_req *rq, const redisReply *rep)
{
	const redisReply *h = arr(rep, 0);
	if (api_reply_redis_failure(rq, rep))
		return NULL;
	if (!h || h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
		api_reply_error(rq, 404, "not_found", NULL, "no such survey");
		return NULL;
	}
	const char *txt = hash_get(h, "json");
	json_t *j = txt ? json_loads(txt, 0, NULL) : NULL;
	struct survey_def *d = NULL;
	char field[96], reason[160];
	if (!j || survey_parse(j, 1, &d, field, sizeof field, reason, sizeof reason) < 0) {
		json_decref(j);
		api_reply_error(rq, 500, "internal", NULL, "the stored survey is unreadable");
		return NULL;
	}
	json_decref(j);
	return d;
}

/* ---------------------------------------------------------------- definitions */

/* The validated, canonical definition from the body (every question with
 * its id, the survey's id set); NULL after answering 400. */
static json_t *definition(struct api_req *rq, const char *path_id, long long *expect_v,
                          struct survey_def **out)
{
	json_t *body = json_deep_copy(api_json(rq));
	*expect_v = 0;
	json_t *v = json_object_get(body, "v");
	if (v) {
		if (!path_id || !json_is_integer(v) || json_integer_value(v) < 1) {
			json_decref(body);
			api_reply_error(rq, 400, "invalid_field", "v",
			                path_id ? "the version read, a positive integer"
			                        : "not allowed when creating");
			return NULL;
		}
		*expect_v = (long long)json_integer_value(v);
		json_object_del(body, "v");
	}
	/* what GET adds is ignored, so a read definition can be sent back */
	static const char *const derived[] = {"created_at", "updated_at", "launched", "counts"};
	for (size_t i = 0; path_id && i < ARRAY_SIZE(derived); i++)
		json_object_del(body, derived[i]);
	char field[96], reason[160];
	struct survey_def *d;
	if (survey_parse(body, 0, &d, field, sizeof field, reason, sizeof reason) < 0) {
		json_decref(body);
		api_reply_error(rq, 400,
		                strcmp(reason, "required") == 0 ? "missing_field" : "invalid_field",
		                field[0] ? field : NULL, "%s", reason);
		return NULL;
	}
	if (path_id && d->id[0] && strcmp(d->id, path_id) != 0) {
		survey_free(d);
		json_decref(body);
		api_reply_error(rq, 400, "invalid_field", "id", "differs from the id in the path");
		return NULL;
	}
	if (path_id)
		snprintf(d->id, sizeof d->id, "%s", path_id);
	else if (!d->id[0])
		id_new(d->id, now_ms());
	json_object_set_new(body, "id", json_string(d->id));
	json_t *qs = json_object_get(body, "questions");
	for (size_t i = 0; i < d->nq; i++) {
		json_t *q = json_array_get(qs, i);
		json_object_set_new(q, "id", json_string(d->q[i].id));
		if (json_is_null(json_object_get(q, "help")))
			json_object_del(q, "help");
	}
	/* null is "not given": stored without it */
	const char *k;
	json_t *x, *tmp;
	json_object_foreach_safe(body, tmp, k, x)
	{
		if (json_is_null(x))
			json_object_del(body, k);
	}
	*out = d;
	return body;
}

struct write_ctx {
	struct api_req *rq;
	char id[SURVEY_ID_MAX + 1];
	int created;
};

static void on_read_back(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct write_ctx *w = arg;
	if (!api_reply_redis_failure(w->rq, rep))
		reply_survey(w->rq, w->created ? 201 : 200, rep);
	api_release(w->rq);
	free(w);
}

static void on_written(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct write_ctx *w = arg;
	struct api_req *rq = w->rq;
	const char *st = arr(rep, 0) ? reply_str(arr(rep, 0)) : NULL;
	if (api_reply_redis_failure(rq, rep)) {
		/* answered */
	} else if (st && strcmp(st, "ok") == 0) {
		log_info("survey", "survey=%s %s by=%s", log_q(w->id),
		         w->created ? "created" : "replaced", log_q(api_token_name(rq)));
		store_survey_get(((struct app *)api_app(rq))->st, w->id, on_read_back, w);
		return;
	} else if (st && strcmp(st, "exists") == 0) {
		api_reply_error(rq, 409, "conflict", "id", "a survey with this id exists");
	} else if (st && strcmp(st, "conflict") == 0) {
		api_reply_error(rq, 409, "conflict", "v",
		                "the survey was changed meanwhile (now v%lld)",
		                arr(rep, 1) ? (long long)arr(rep, 1)->integer : 0LL);
	} else if (st && strcmp(st, "launched") == 0) {
		api_reply_error(rq, 409, "conflict", NULL,
		                "the survey was launched to %lld contacts: its questions are fixed",
		                arr(rep, 1) ? (long long)arr(rep, 1)->integer : 0LL);
	} else {
		api_reply_error(rq, 404, "not_found", NULL, "no such survey");
	}
	api_release(rq);
	free(w);
}

static void write_def(struct api_req *rq, const char *path_id)
{
	long long expect_v;
	struct survey_def *d;
	json_t *body = definition(rq, path_id, &expect_v, &d);
	if (!body)
		return;
	if (!api_store_ready(rq)) {
		survey_free(d);
		json_decref(body);
		return;
	}
	struct write_ctx *w = xcalloc(1, sizeof *w);
	w->rq = rq;
	w->created = path_id == NULL;
	snprintf(w->id, sizeof w->id, "%s", d->id);
	char *text = json_dumps(body, JSON_COMPACT);
	api_hold(rq);
	struct app *app = api_app(rq);
	if (path_id)
		store_survey_replace(app->st, w->id, text, expect_v, now_ms(), on_written, w);
	else
		store_survey_create(app->st, w->id, text, now_ms(), on_written, w);
	free(text);
	json_decref(body);
	survey_free(d);
}

static void h_create(struct api_req *rq)
{
	write_def(rq, NULL);
}

static void h_put(struct api_req *rq)
{
	if (api_crud_param(rq, &surveys))
		write_def(rq, api_param(rq, "id"));
}

static void h_get(struct api_req *rq)
{
	api_crud_get(rq, &surveys);
}

static void h_list(struct api_req *rq)
{
	api_crud_list(rq, &surveys);
}

static void h_delete(struct api_req *rq)
{
	int force = query_force(rq);
	if (force < 0) {
		api_reply_error(rq, 400, "invalid_field", "force", "true or false");
		return;
	}
	if (force && api_req_role(rq) < ROLE_ADMIN) {
		api_reply_error(rq, 403, "forbidden", NULL,
		                "deleting a survey's results needs an admin token");
		return;
	}
	api_crud_delete(rq, &surveys);
}

/* ---------------------------------------------------------------- launch */

struct launch_ctx {
	struct api_req *rq;
	struct segment *seg; /* until handed to the launch */
	char camp[SURVEY_ID_MAX + 1];
	int kind;
	int running;
};

static void launch_ctx_free(void *p)
{
	struct launch_ctx *x = p;
	segment_free(x->seg);
	free(x);
}

static void launch_progress(void *arg, const struct survey_launch_counts *n, int err)
{
	(void)n;
	(void)err;
	struct launch_ctx *x = arg;
	api_set_timeout(x->rq, LAUNCH_DEADLINE);
}

static void launch_done(void *arg, const struct survey_launch_counts *n, int err)
{
	struct launch_ctx *x = arg;
	struct api_req *rq = x->rq;
	if (err == -ENOENT) {
		if (x->camp[0])
			api_reply_error(rq, 404, "not_found", "campaign", "no such campaign");
		else
			api_reply_error(rq, 404, "not_found", NULL, "the survey was deleted");
	} else if (err) {
		api_reply_error(rq, 503, "unavailable", NULL,
		                "the store failed after %lld contacts; launching again is safe",
		                (long long)n->examined);
	} else {
		json_t *o = json_pack(
		    "{s:s, s:s, s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:I}", "survey",
		    api_param(rq, "id"), "channel",
		    x->kind < 0 ? "preferred" : addr_kind_name((enum addr_kind)x->kind), "examined",
		    (json_int_t)n->examined, "sent", (json_int_t)n->sent, "skipped", "already",
		    (json_int_t)n->already, "open", (json_int_t)n->open, "suppressed",
		    (json_int_t)n->suppressed, "no_contact", (json_int_t)n->no_contact, "failed",
		    (json_int_t)n->failed);
		if (x->camp[0])
			json_object_set_new(o, "campaign", json_string(x->camp));
		api_reply_json(rq, 200, o);
	}
	api_release(rq);
}

static void on_launch_survey(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct launch_ctx *x = arg;
	struct api_req *rq = x->rq;
	struct survey_def *d = stored_survey(rq, rep);
	if (!d) {
		api_release(rq);
		return;
	}
	struct segment *seg = x->seg;
	x->seg = NULL;
	x->running = 1;
	/* the hold taken in launch_begin is released by launch_done */
	survey_launch(api_app(rq), d, seg, x->camp[0] ? x->camp : NULL, x->kind, launch_progress,
	              launch_done, x);
}

static void launch_begin(struct api_req *rq, struct segment *seg, const char *camp)
{
	json_t *body = api_json(rq);
	const char *ch = json_string_value(json_object_get(body, "channel"));
	struct launch_ctx *x = xcalloc(1, sizeof *x);
	x->rq = rq;
	x->seg = seg;
	snprintf(x->camp, sizeof x->camp, "%s", camp ? camp : "");
	x->kind = !ch || strcmp(ch, "preferred") == 0 ? -1 : addr_kind_parse(ch);
	api_set_data(rq, x, launch_ctx_free);
	api_set_timeout(rq, LAUNCH_DEADLINE);
	api_hold(rq);
	store_survey_get(((struct app *)api_app(rq))->st, api_param(rq, "id"), on_launch_survey, x);
}

static void on_segment_loaded(struct api_req *rq, struct segment *s, const char *id)
{
	(void)id;
	if (!survey_id_valid(api_param(rq, "id"), SURVEY_ID_MAX) || api_replied(rq)) {
		segment_free(s);
		return;
	}
	launch_begin(rq, s, NULL);
}

static void h_launch(struct api_req *rq)
{
	if (!api_crud_param(rq, &surveys))
		return;
	json_t *body = api_json(rq);
	const char *k;
	json_t *v;
	json_object_foreach(body, k, v)
	{
		if (strcmp(k, "segment") && strcmp(k, "campaign") && strcmp(k, "channel")) {
			api_reply_error(rq, 400, "invalid_field", k, "unknown key");
			return;
		}
	}
	const json_t *ch = json_object_get(body, "channel");
	if (ch && (!json_is_string(ch) || (strcmp(json_string_value(ch), "preferred") != 0 &&
	                                   addr_kind_parse(json_string_value(ch)) < 0))) {
		api_reply_error(rq, 400, "invalid_field", "channel",
		                "one of sms, chat, email, preferred");
		return;
	}
	const json_t *seg = json_object_get(body, "segment");
	const json_t *camp = json_object_get(body, "campaign");
	if (seg && camp) {
		api_reply_error(rq, 400, "invalid_field", "campaign",
		                "give a segment or a campaign, not both");
		return;
	}
	if (!seg && !camp) {
		api_reply_error(rq, 400, "missing_field", "segment",
		                "give a segment (id or definition) or a campaign");
		return;
	}
	if (camp) {
		if (!json_is_string(camp) ||
		    !survey_id_valid(json_string_value(camp), SURVEY_ID_MAX)) {
			api_reply_error(rq, 400, "invalid_field", "campaign", "a campaign id");
			return;
		}
		if (api_store_ready(rq))
			launch_begin(rq, NULL, json_string_value(camp));
		return;
	}
	if (json_is_string(seg)) {
		if (!segment_id_valid(json_string_value(seg))) {
			api_reply_error(rq, 400, "invalid_field", "segment", "not a segment id");
			return;
		}
		api_segment_load(rq, json_string_value(seg), on_segment_loaded);
		return;
	}
	if (!json_is_object(seg)) {
		api_reply_error(rq, 400, "invalid_field", "segment",
		                "a segment id or an inline definition");
		return;
	}
	struct segment *s = NULL;
	const char *field = NULL, *reason = NULL;
	if (segment_parse(seg, &s, &field, &reason) < 0) {
		char f[160];
		snprintf(f, sizeof f, "segment%s%s", field && *field ? "." : "",
		         field ? field : "");
		api_reply_error(rq, 400, "invalid_field", f, "%s", reason ? reason : "invalid");
		return;
	}
	if (api_store_ready(rq))
		launch_begin(rq, s, NULL);
	else
		segment_free(s);
}

/* ---------------------------------------------------------------- results */

/* {items: [{contact_id, at, text}], next_cursor} from XRANGE entries (at
 * most limit + 1: the extra one says there is more). */
static json_t *texts_page(const redisReply *entries, int limit)
{
	json_t *items = json_array();
	const char *last = NULL;
	size_t n = entries && entries->type == REDIS_REPLY_ARRAY ? entries->elements : 0;
	for (size_t i = 0; i < n && (int)i < limit; i++) {
		const redisReply *e = entries->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
			continue;
		const char *id = reply_str(e->element[0]);
		if (!id)
			continue;
		int64_t ms = 0;
		char msbuf[24];
		snprintf(msbuf, sizeof msbuf, "%.*s", (int)strcspn(id, "-"), id);
		parse_i64(msbuf, 0, INT64_MAX, &ms);
		char t[40];
		fmt_time(ms, t, sizeof t);
		const char *c = hash_get(e->element[1], "c"), *tx = hash_get(e->element[1], "t");
		json_array_append_new(items, json_pack("{s:s, s:s, s:s}", "contact_id", c ? c : "",
		                                       "at", t, "text", tx ? tx : ""));
		last = id;
	}
	return json_pack("{s:o, s:o}", "items", items, "next_cursor",
	                 (int)n > limit && last ? json_string(last) : json_null());
}

static json_t *question_results(const struct survey_def *d, size_t qi, const redisReply *counts,
                                const redisReply *texts, int text_limit)
{
	const struct survey_question *q = &d->q[qi];
	char f[SURVEY_QID_MAX + 40];
	snprintf(f, sizeof f, "%s:n", q->id);
	int64_t answers = hash_get_i64(counts, f, 0);
	snprintf(f, sizeof f, "%s:invalid", q->id);
	int64_t invalid = hash_get_i64(counts, f, 0);
	json_t *o =
	    json_pack("{s:s, s:s, s:s, s:I, s:I}", "id", q->id, "type", survey_qtype_name(q->type),
	              "text", survey_text_pick(&q->text, d->lang, d->lang), "answers",
	              (json_int_t)answers, "invalid", (json_int_t)invalid);
	int lo, hi;
	if (survey_value_range(q, &lo, &hi) > 0) {
		int64_t count[SURVEY_OPTIONS_MAX + 11] = {0};
		json_t *dist = json_object();
		for (int v = lo; v <= hi; v++) {
			snprintf(f, sizeof f, "%s:v:%d", q->id, v);
			count[v - lo] = hash_get_i64(counts, f, 0);
			char key[8];
			snprintf(key, sizeof key, "%d", v);
			json_object_set_new(dist, key, json_integer(count[v - lo]));
		}
		json_object_set_new(o, "distribution", dist);
		if (q->type == SURVEY_Q_CHOICE) {
			json_t *opts = json_array();
			for (size_t i = 0; i < q->noptions; i++)
				json_array_append_new(opts, json_string(survey_text_pick(
				                                &q->option[i], d->lang, d->lang)));
			json_object_set_new(o, "options", opts);
		} else {
			json_object_set_new(o, "mean", json_real(survey_mean(count, lo, hi)));
		}
		if (q->type == SURVEY_Q_NPS) {
			int64_t p, m, dt;
			double score = survey_nps(count, &p, &m, &dt);
			json_object_set_new(o, "nps", json_real(score));
			json_object_set_new(o, "promoters", json_integer(p));
			json_object_set_new(o, "passives", json_integer(m));
			json_object_set_new(o, "detractors", json_integer(dt));
		}
	} else {
		const redisReply *page = NULL;
		for (size_t i = 0; texts && texts->type == REDIS_REPLY_ARRAY && i < texts->elements;
		     i++) {
			const redisReply *t = texts->element[i];
			const char *qid = arr(t, 0) ? reply_str(arr(t, 0)) : NULL;
			if (qid && strcmp(qid, q->id) == 0)
				page = arr(t, 1);
		}
		json_object_set_new(o, "texts", texts_page(page, text_limit));
	}
	return o;
}

struct results_ctx {
	struct api_req *rq;
	int text_limit;
};

static void on_results(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct results_ctx *x = arg;
	struct api_req *rq = x->rq;
	struct survey_def *d = stored_survey(rq, rep);
	if (d) {
		const redisReply *counts = arr(rep, 1);
		int64_t sent = hash_get_i64(counts, "sent", 0),
		        started = hash_get_i64(counts, "started", 0),
		        completed = hash_get_i64(counts, "completed", 0);
		json_t *qs = json_array();
		for (size_t i = 0; i < d->nq; i++)
			json_array_append_new(
			    qs, question_results(d, i, counts, arr(rep, 2), x->text_limit));
		json_t *o = json_pack(
		    "{s:s, s:s, s:I, s:I, s:I, s:f, s:f, s:{s:I, s:I}, s:o}", "survey", d->id,
		    "name", d->name, "sent", (json_int_t)sent, "started", (json_int_t)started,
		    "completed", (json_int_t)completed, "response_rate", survey_rate(started, sent),
		    "completion_rate", survey_rate(completed, sent), "skipped", "open",
		    (json_int_t)hash_get_i64(counts, "skipped_open", 0), "already",
		    (json_int_t)hash_get_i64(counts, "skipped_already", 0), "questions", qs);
		api_reply_json(rq, 200, o);
		survey_free(d);
	}
	api_release(rq);
	free(x);
}

static void h_results(struct api_req *rq)
{
	int64_t tl = TEXTS_DEFAULT;
	const char *l = api_query(rq, "text_limit");
	if (l && parse_i64(l, 0, RESULTS_TEXTS_MAX, &tl) < 0) {
		api_reply_error(rq, 400, "invalid_field", "text_limit", "text_limit is 0..200");
		return;
	}
	if (!api_crud_param(rq, &surveys) || !api_store_ready(rq))
		return;
	struct results_ctx *x = xcalloc(1, sizeof *x);
	x->rq = rq;
	x->text_limit = (int)tl;
	api_hold(rq);
	store_survey_results(((struct app *)api_app(rq))->st, api_param(rq, "id"), (int)tl,
	                     on_results, x);
}

struct texts_ctx {
	struct api_req *rq;
	int limit;
	char cursor[48];
};

static void on_texts(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct texts_ctx *x = arg;
	struct api_req *rq = x->rq;
	if (!api_reply_redis_failure(rq, rep)) {
		if (!arr(rep, 0) || arr(rep, 0)->integer != 1)
			api_reply_error(rq, 404, "not_found", NULL, "no such survey");
		else
			api_reply_json(rq, 200, texts_page(arr(rep, 1), x->limit));
	}
	api_release(rq);
	free(x);
}

static void on_texts_survey(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct texts_ctx *x = arg;
	struct api_req *rq = x->rq;
	struct survey_def *d = stored_survey(rq, rep);
	if (!d)
		goto out;
	int qi = survey_question_index(d, api_param(rq, "question"));
	int is_text = qi >= 0 && d->q[qi].type == SURVEY_Q_TEXT;
	survey_free(d);
	if (!is_text) {
		api_reply_error(rq, 404, "not_found", "question", "no such free-text question");
		goto out;
	}
	store_survey_texts(((struct app *)api_app(rq))->st, api_param(rq, "id"),
	                   api_param(rq, "question"), x->cursor, x->limit, on_texts, x);
	return;
out:
	api_release(rq);
	free(x);
}

/* A stream id "ms-seq". */
static int cursor_ok(const char *s)
{
	size_t n = strlen(s), dash = 0;
	if (n == 0 || n > 41)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '-' && i > 0 && !dash)
			dash = i;
		else if (s[i] < '0' || s[i] > '9')
			return 0;
	}
	return dash > 0 && dash + 1 < n;
}

static void h_texts(struct api_req *rq)
{
	int64_t limit;
	const char *cur;
	if (!api_crud_list_args(rq, TEXTS_DEFAULT, TEXTS_MAX, cursor_ok, &limit, &cur))
		return;
	if (!api_crud_param(rq, &surveys))
		return;
	if (!survey_id_valid(api_param(rq, "question"), SURVEY_QID_MAX)) {
		api_reply_error(rq, 404, "not_found", "question", "no such free-text question");
		return;
	}
	if (!api_store_ready(rq))
		return;
	struct texts_ctx *x = xcalloc(1, sizeof *x);
	x->rq = rq;
	x->limit = (int)limit;
	snprintf(x->cursor, sizeof x->cursor, "%s", cur ? cur : "");
	api_hold(rq);
	store_survey_get(((struct app *)api_app(rq))->st, api_param(rq, "id"), on_texts_survey, x);
}

/* ---------------------------------------------------------------- CSV */

struct csv_ctx {
	struct api_req *rq;
	struct survey_def *d;
	struct buf out;
	size_t off;
	long long next; /* offset of the next page */
	int waiting, done, err;
	uint64_t rows;
};

static void csv_free(void *p)
{
	struct csv_ctx *x = p;
	survey_free(x->d);
	buf_free(&x->out);
	free(x);
}

static void csv_time(struct buf *b, const char *ms_text)
{
	int64_t ms;
	buf_append(b, ",", 1);
	if (ms_text && parse_i64(ms_text, 0, INT64_MAX, &ms) == 0) {
		char t[40];
		fmt_time(ms, t, sizeof t);
		buf_puts(b, t);
	}
}

static void csv_row(struct csv_ctx *x, const char *cid, const redisReply *h)
{
	struct buf *b = &x->out;
	survey_csv_field(b, cid);
	buf_append(b, ",", 1);
	survey_csv_field(b, hash_get(h, "channel"));
	csv_time(b, hash_get(h, "sent"));
	csv_time(b, hash_get(h, "replied"));
	csv_time(b, hash_get(h, "completed"));
	for (size_t i = 0; i < x->d->nq; i++) {
		const struct survey_question *q = &x->d->q[i];
		const char *v = hash_get(h, q->id);
		buf_append(b, ",", 1);
		int64_t n;
		if (v && q->type == SURVEY_Q_CHOICE &&
		    parse_i64(v, 1, (int64_t)q->noptions, &n) == 0)
			v = survey_text_pick(&q->option[n - 1], x->d->lang, x->d->lang);
		survey_csv_field(b, v);
	}
	buf_append(b, "\r\n", 2);
	x->rows++;
}

static void on_csv_page(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	struct csv_ctx *x = api_data(rq);
	x->waiting = 0;
	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1) {
		log_warnx("survey", "survey=%s csv export failed rows=%llu", log_q(x->d->id),
		          (unsigned long long)x->rows);
		x->err = 1;
	} else {
		size_t got = 0;
		for (size_t i = 1; i < rep->elements; i++) {
			const redisReply *e = rep->element[i];
			const char *cid = arr(e, 0) ? reply_str(arr(e, 0)) : NULL;
			if (cid)
				csv_row(x, cid, arr(e, 1));
			got++;
		}
		x->next += (long long)got;
		x->done = got < CSV_PAGE;
	}
	api_stream_wake(rq);
	api_release(rq);
}

static long csv_fill(struct api_req *rq, char *dst, size_t max)
{
	struct csv_ctx *x = api_data(rq);
	size_t left = x->out.len - x->off;
	if (left > 0) {
		size_t k = left < max ? left : max;
		memcpy(dst, x->out.p + x->off, k);
		x->off += k;
		if (x->off == x->out.len) {
			buf_reset(&x->out);
			x->off = 0;
		}
		return (long)k;
	}
	if (x->err)
		return API_STREAM_ERROR;
	if (x->done) {
		log_info("survey", "survey=%s csv export rows=%llu by=%s", log_q(x->d->id),
		         (unsigned long long)x->rows, log_q(api_token_name(rq)));
		return API_STREAM_END;
	}
	if (!x->waiting) {
		x->waiting = 1;
		api_hold(rq);
		store_survey_rows(((struct app *)api_app(rq))->st, x->d->id, x->next, CSV_PAGE,
		                  on_csv_page, rq);
	}
	return 0;
}

static void on_csv_survey(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct api_req *rq = arg;
	struct survey_def *d = stored_survey(rq, rep);
	if (!d) {
		api_release(rq);
		return;
	}
	struct csv_ctx *x = xcalloc(1, sizeof *x);
	x->rq = rq;
	x->d = d;
	buf_init(&x->out, 0); /* bounded by one page of rows */
	api_set_data(rq, x, csv_free);
	if (api_query(rq, "bom") && strcmp(api_query(rq, "bom"), "1") == 0)
		buf_puts(&x->out, "\xEF\xBB\xBF");
	buf_puts(&x->out, "contact_id,channel,sent_at,answered_at,completed_at");
	for (size_t i = 0; i < d->nq; i++) {
		buf_append(&x->out, ",", 1);
		survey_csv_field(&x->out, d->q[i].id);
	}
	buf_puts(&x->out, "\r\n");
	char disp[160];
	snprintf(disp, sizeof disp, "attachment; filename=\"survey-%s.csv\"", d->id);
	api_add_header(rq, "Content-Disposition", disp);
	api_reply_stream(rq, 200, "text/csv; charset=utf-8", csv_fill);
	api_release(rq);
}

static void h_csv(struct api_req *rq)
{
	const char *bom = api_query(rq, "bom");
	if (bom && strcmp(bom, "1") != 0 && strcmp(bom, "0") != 0) {
		api_reply_error(rq, 400, "invalid_field", "bom", "bom is 0 or 1");
		return;
	}
	if (!api_crud_param(rq, &surveys) || !api_store_ready(rq))
		return;
	api_hold(rq);
	store_survey_get(((struct app *)api_app(rq))->st, api_param(rq, "id"), on_csv_survey, rq);
}

const struct api_route api_survey_routes[] = {
    {"POST", "/v1/surveys", ROLE_MARKETER, API_BODY_JSON, h_create, NULL, NULL},
    {"GET", "/v1/surveys", ROLE_VIEWER, API_BODY_NONE, h_list, NULL, NULL},
    {"GET", "/v1/surveys/{id}", ROLE_VIEWER, API_BODY_NONE, h_get, NULL, NULL},
    {"PUT", "/v1/surveys/{id}", ROLE_MARKETER, API_BODY_JSON, h_put, NULL, NULL},
    {"DELETE", "/v1/surveys/{id}", ROLE_MARKETER, API_BODY_NONE, h_delete, NULL, NULL},
    {"POST", "/v1/surveys/{id}/launch", ROLE_MARKETER, API_BODY_JSON, h_launch, NULL, NULL},
    {"GET", "/v1/surveys/{id}/results", ROLE_VIEWER, API_BODY_NONE, h_results, NULL, NULL},
    {"GET", "/v1/surveys/{id}/results.csv", ROLE_MARKETER, API_BODY_NONE, h_csv, NULL, NULL},
    {"GET", "/v1/surveys/{id}/results/{question}/texts", ROLE_VIEWER, API_BODY_NONE, h_texts, NULL,
     NULL},
};
const size_t api_survey_nroutes = ARRAY_SIZE(api_survey_routes);
