/*
 * api_occasions.c - /v1/occasions: create, list, read, replace and delete
 * occasion rules; preview who a rule reaches on a day; start an operator's
 * run for a day.  Validation is occasion.c's (plus: the template and a
 * saved segment must exist, an inline segment must parse, a fixed channel
 * must be configured here); storage is store_occasions.c's; runs are
 * occasions_run.c's (this file only records the request and wakes the
 * local runner).  Knows no key names.
 *
 * Preview walks the rule's audience inside the request (its deadline is
 * pushed back PREVIEW_STEP_MS at every batch) and answers counts and the
 * first SAMPLE_MAX contacts.  Limits: STORE_OCC_MAX rules; preview batches
 * of PREVIEW_BATCH contacts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_crud.h"
#include "app.h"
#include "log.h"
#include "occasion.h"
#include "occasions_run.h"
#include "segment.h"
#include "store_occasions.h"
#include "tplset.h"
#include "util.h"

#define SAMPLE_MAX      20
#define PREVIEW_BATCH   1000
#define PREVIEW_STEP_MS 60000

/* ---------------------------------------------------------------- output */

static void set_time(json_t *o, const char *key, int64_t ms)
{
	if (ms <= 0) {
		json_object_set_new(o, key, json_null());
		return;
	}
	char t[40];
	fmt_time(ms, t, sizeof t);
	json_object_set_new(o, key, json_string(t));
}

/* A run record (HGETALL) in the API form, or null. */
static json_t *run_json(const redisReply *h)
{
	static const char *const counters[] = {"examined", "matched", "created",
	                                       "dup",      "missed",  "errors"};
	if (!h || h->type != REDIS_REPLY_ARRAY || h->elements == 0)
		return json_null();
	const char *state = hash_get(h, "state"), *date = hash_get(h, "date");
	json_t *o = json_object();
	json_object_set_new(o, "state", json_string(state ? state : "done"));
	json_object_set_new(o, "date", date && *date ? json_string(date) : json_null());
	set_time(o, "started_at", hash_get_i64(h, "started", 0));
	set_time(o, "finished_at", hash_get_i64(h, "finished", 0));
	for (size_t i = 0; i < ARRAY_SIZE(counters); i++)
		json_object_set_new(o, counters[i], json_integer(hash_get_i64(h, counters[i], 0)));
	const char *err = hash_get(h, "error");
	if (state && strcmp(state, "failed") == 0)
		json_object_set_new(o, "error", json_string(err ? err : "failed"));
	return o;
}

/* The API form of a rule from its stored hash and run records (new
 * reference), or NULL when the stored definition does not parse. */
static json_t *rule_json(const redisReply *h, const redisReply *run, const redisReply *live)
{
	const char *txt = hash_get(h, "json");
	json_t *def = txt ? json_loads(txt, 0, NULL) : NULL;
	struct occ_rule *r = NULL;
	const char *field;
	char reason[160];
	if (!def || occ_rule_parse(def, 1, &r, &field, reason, sizeof reason) < 0) {
		json_decref(def);
		return NULL;
	}
	json_decref(def);
	json_t *o = occ_rule_to_json(r);
	occ_rule_free(r);
	json_object_set_new(o, "version", json_integer(hash_get_i64(h, "v", 1)));
	set_time(o, "created_at", hash_get_i64(h, "created", 0));
	set_time(o, "updated_at", hash_get_i64(h, "updated", 0));
	json_object_set_new(o, "run", run_json(run));
	json_object_set_new(o, "last_pass", run_json(live));
	return o;
}

/* ---------------------------------------------------------------- list, get */

static void on_listed(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		json_t *items = json_array();
		for (size_t i = 0; rep->type == REDIS_REPLY_ARRAY && i + 2 < rep->elements;
		     i += 3) {
			json_t *o =
			    rule_json(rep->element[i], rep->element[i + 1], rep->element[i + 2]);
			if (o)
				json_array_append_new(items, o);
		}
		api_reply_json(rq, 200, json_pack("{s:o}", "items", items));
	}
	api_release(rq);
}

static void h_list(struct api_req *rq)
{
	struct app *app = api_app(rq);
	if (!api_store_ready(rq))
		return;
	api_hold(rq);
	store_occ_get(app->st, NULL, on_listed, rq);
}

static int one_rule(const redisReply *rep)
{
	return rep->type == REDIS_REPLY_ARRAY && rep->elements == 3;
}

static void on_got(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		json_t *o = one_rule(rep)
		                ? rule_json(rep->element[0], rep->element[1], rep->element[2])
		                : NULL;
		if (o)
			api_reply_json(rq, 200, o);
		else
			api_reply_error(rq, 404, "not_found", NULL, "no such occasion rule");
	}
	api_release(rq);
}

static const char *path_id(struct api_req *rq)
{
	const char *id = api_param(rq, "id");
	if (!occ_id_valid(id)) {
		api_reply_error(rq, 404, "not_found", NULL, "no such occasion rule");
		return NULL;
	}
	return id;
}

static void h_get(struct api_req *rq)
{
	struct app *app = api_app(rq);
	const char *id = path_id(rq);
	if (!id || !api_store_ready(rq))
		return;
	api_hold(rq);
	store_occ_get(app->st, id, on_got, rq);
}

/* ---------------------------------------------------------------- writes */

struct write {
	struct api_req *rq;
	struct occ_rule *rule;
	char *json; /* canonical definition */
	int create;
};

static void write_free(struct write *w)
{
	occ_rule_free(w->rule);
	free(w->json);
	free(w);
}

static void write_done(struct write *w)
{
	api_release(w->rq);
	write_free(w);
}

static void on_written_got(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct write *w = arg;
	struct api_req *rq = w->rq;
	if (!api_reply_redis_failure(rq, rep)) {
		json_t *o = one_rule(rep)
		                ? rule_json(rep->element[0], rep->element[1], rep->element[2])
		                : NULL;
		if (o)
			api_reply_json(rq, w->create ? 201 : 200, o);
		else
			api_reply_error(rq, 404, "not_found", NULL, "no such occasion rule");
	}
	write_done(w);
}

static void on_written(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct write *w = arg;
	struct api_req *rq = w->rq;
	struct app *app = api_app(rq);
	if (!api_reply_redis_failure(rq, rep)) {
		const char *st = api_crud_str(rep, 0);
		if (st && strcmp(st, "ok") == 0) {
			log_info("api", "occasion=%s event=%s", w->rule->id,
			         w->create ? "created" : "replaced");
			store_occ_get(app->st, w->rule->id, on_written_got, w);
			return;
		}
		if (st && strcmp(st, "exists") == 0)
			api_reply_error(rq, 409, "conflict", "id",
			                "an occasion rule with this id exists");
		else if (st && strcmp(st, "full") == 0)
			api_reply_error(rq, 409, "conflict", NULL, "at most %d occasion rules",
			                STORE_OCC_MAX);
		else if (st && strcmp(st, "not_found") == 0)
			api_reply_error(rq, 404, "not_found", NULL, "no such occasion rule");
		else
			api_reply_error(rq, 503, "unavailable", NULL, "unexpected store answer");
	}
	write_done(w);
}

static void write_store(struct write *w)
{
	struct app *app = api_app(w->rq);
	store_occ_write(app->st, w->create ? "create" : "put", w->rule->id, now_ms(), w->json, NULL,
	                on_written, w);
}

static void on_segment_checked(void *arg, struct segment *seg, int err, const char *reason)
{
	struct write *w = arg;
	struct api_req *rq = w->rq;
	segment_free(seg);
	if (err == -EIO) {
		api_reply_error(rq, 503, "unavailable", NULL,
		                "the store is unavailable; nothing was written, retry later");
	} else if (err == -ENOENT) {
		api_reply_error(rq, 400, "invalid_field", "segment", "no such segment");
	} else if (err < 0) {
		api_reply_error(rq, 400, "invalid_field", "segment", "%s",
		                reason ? reason : "invalid segment");
	} else {
		write_store(w);
		return;
	}
	write_done(w);
}

static void on_template_checked(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct write *w = arg;
	struct api_req *rq = w->rq;
	struct app *app = api_app(rq);
	if (!api_reply_redis_failure(rq, rep)) {
		if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
		    !reply_str(rep->element[0])) {
			api_reply_error(rq, 400, "invalid_field", "template",
			                "no such template (create it under /v1/templates first)");
		} else {
			occ_segment_load(app->st, w->rule, on_segment_checked, w);
			return;
		}
	}
	write_done(w);
}

/* Validate the body into a write; NULL after replying with an error. */
static struct write *validate(struct api_req *rq, int create)
{
	struct app *app = api_app(rq);
	json_t *body = api_json(rq);
	const char *field = "";
	char reason[160];
	struct occ_rule *r = NULL;
	if (occ_rule_parse(body, 0, &r, &field, reason, sizeof reason) < 0) {
		char f[72];
		snprintf(f, sizeof f, "%.64s", field);
		api_reply_error(rq, 400, "invalid_field", f, "%s", reason);
		return NULL;
	}
	if (!create) {
		const char *id = api_param(rq, "id");
		if (*r->id && strcmp(r->id, id) != 0) {
			api_reply_error(rq, 400, "invalid_field", "id", "differs from the path");
			occ_rule_free(r);
			return NULL;
		}
		snprintf(r->id, sizeof r->id, "%s", id);
	} else if (!*r->id) {
		char id[ID_LEN + 1];
		id_new(id, now_ms());
		snprintf(r->id, sizeof r->id, "%s", id);
	}
	if (!tplset_id_valid(r->tmpl)) {
		api_reply_error(rq, 400, "invalid_field", "template",
		                "a template id: 1..64 of a-z 0-9 _ -");
		occ_rule_free(r);
		return NULL;
	}
	if (addr_kind_parse(r->channel) >= 0 && !chan_find(app->chans, app->nchans, r->channel)) {
		api_reply_error(rq, 400, "invalid_field", "channel",
		                "channel %s is not configured on this server", r->channel);
		occ_rule_free(r);
		return NULL;
	}
	struct write *w = xcalloc(1, sizeof *w);
	w->rq = rq;
	w->rule = r;
	w->create = create;
	json_t *canon = occ_rule_to_json(r);
	w->json = json_dumps(canon, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(canon);
	return w;
}

static void write_begin(struct api_req *rq, int create)
{
	struct app *app = api_app(rq);
	if (!create && !path_id(rq))
		return;
	struct write *w = validate(rq, create);
	if (!w)
		return;
	if (!api_store_ready(rq)) {
		write_free(w);
		return;
	}
	api_hold(rq);
	store_template_get(app->st, w->rule->tmpl, on_template_checked, w);
}

static void h_create(struct api_req *rq)
{
	write_begin(rq, 1);
}

static void h_put(struct api_req *rq)
{
	write_begin(rq, 0);
}

static void on_deleted(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct api_req *rq = arg;
	if (!api_reply_redis_failure(rq, rep)) {
		const char *st = api_crud_str(rep, 0);
		if (st && strcmp(st, "ok") == 0)
			api_reply_raw(rq, 204, NULL, "", 0);
		else
			api_reply_error(rq, 404, "not_found", NULL, "no such occasion rule");
	}
	api_release(rq);
}

static void h_delete(struct api_req *rq)
{
	struct app *app = api_app(rq);
	const char *id = path_id(rq);
	if (!id || !api_store_ready(rq))
		return;
	api_hold(rq);
	store_occ_write(app->st, "delete", id, now_ms(), NULL, NULL, on_deleted, rq);
}

/* ---------------------------------------------------------------- run */

struct runreq {
	struct api_req *rq;
	char id[OCC_ID_MAX + 1];
	char date[16]; /* "" = each contact's local today */
	int64_t at;
};

static int query_date(struct api_req *rq, char *out, size_t n)
{
	const char *d = api_query(rq, "date");
	struct occ_day day;
	*out = '\0';
	if (!d || !*d)
		return 0;
	if (occ_day_parse(d, &day) < 0 || day.y < 1900 || day.y > 2999) {
		api_reply_error(
		    rq, 400, "invalid_field", "date",
		    "a Gregorian date YYYY-MM-DD, 1900..2999 (Nowruz 1404 is 2025-03-21)");
		return -1;
	}
	snprintf(out, n, "%s", d);
	return 0;
}

static void on_run_started(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct runreq *q = arg;
	struct api_req *rq = q->rq;
	struct app *app = api_app(rq);
	if (!api_reply_redis_failure(rq, rep)) {
		const char *st = api_crud_str(rep, 0);
		if (st && strcmp(st, "ok") == 0) {
			log_notice("api", "occasion=%s event=run_requested date=%s", q->id,
			           log_q(*q->date ? q->date : "local_today"));
			occ_runner_kick(app->occ);
			json_t *run = json_object();
			json_object_set_new(run, "state", json_string("running"));
			json_object_set_new(run, "date",
			                    *q->date ? json_string(q->date) : json_null());
			set_time(run, "started_at", q->at);
			api_reply_json(rq, 202, json_pack("{s:s, s:o}", "id", q->id, "run", run));
		} else if (st && strcmp(st, "busy") == 0) {
			api_reply_error(
			    rq, 409, "conflict", NULL,
			    "a run of this rule is in progress; see GET /v1/occasions/%s", q->id);
		} else {
			api_reply_error(rq, 404, "not_found", NULL, "no such occasion rule");
		}
	}
	api_release(rq);
	free(q);
}

static void on_run_rule(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct runreq *q = arg;
	struct api_req *rq = q->rq;
	struct app *app = api_app(rq);
	if (!api_reply_redis_failure(rq, rep)) {
		json_t *o = one_rule(rep)
		                ? rule_json(rep->element[0], rep->element[1], rep->element[2])
		                : NULL;
		if (!o) {
			api_reply_error(rq, 404, "not_found", NULL, "no such occasion rule");
		} else if (!json_is_true(json_object_get(o, "enabled"))) {
			api_reply_error(rq, 409, "conflict", "enabled", "the rule is disabled");
		} else {
			json_decref(o);
			q->at = now_ms();
			store_occ_run_start(app->st, q->id, q->at, app->cfg->occasions_lease_ms,
			                    q->date, on_run_started, q);
			return;
		}
		json_decref(o);
	}
	api_release(rq);
	free(q);
}

static void h_run(struct api_req *rq)
{
	struct app *app = api_app(rq);
	const char *id = path_id(rq);
	if (!id)
		return;
	struct runreq *q = xcalloc(1, sizeof *q);
	q->rq = rq;
	snprintf(q->id, sizeof q->id, "%s", id);
	if (query_date(rq, q->date, sizeof q->date) < 0 || !api_store_ready(rq)) {
		free(q);
		return;
	}
	api_hold(rq);
	store_occ_get(app->st, id, on_run_rule, q);
}

/* ---------------------------------------------------------------- preview */

struct pv_hit {
	char cid[64];
	char *name;
	char idem[OCC_ID_MAX + 96];
	struct occ_decision d;
	char zone[72];
};

struct preview {
	struct api_req *rq;
	struct occ_rule *rule;
	int has_day;
	struct occ_day day;
	struct occ_window defw;
	struct segment *seg;
	struct segment_scan *sc;
	int64_t now;
	long long examined, matched, due, missed, sent, errors;
	json_t *sample;
	struct pv_hit *hits;
	size_t nhits;
	int last;
	char field[OCC_ATTR_MAX + 3];
	const char *fields[4];
	size_t nfields;
};

static void pv_hits_free(struct preview *p)
{
	for (size_t i = 0; i < p->nhits; i++)
		free(p->hits[i].name);
	free(p->hits);
	p->hits = NULL;
	p->nhits = 0;
}

static void pv_free(struct preview *p)
{
	if (p->sc)
		segment_scan_free(p->sc);
	segment_free(p->seg);
	occ_rule_free(p->rule);
	json_decref(p->sample);
	pv_hits_free(p);
	free(p);
}

static void pv_end(struct preview *p)
{
	struct api_req *rq = p->rq;
	pv_free(p);
	api_release(rq);
}

static void pv_answer(struct preview *p)
{
	json_t *o = json_object();
	json_object_set_new(o, "id", json_string(p->rule->id));
	if (p->has_day) {
		char d[40];
		snprintf(d, sizeof d, "%04d-%02d-%02d", p->day.y, p->day.m, p->day.d);
		json_object_set_new(o, "date", json_string(d));
	} else {
		json_object_set_new(o, "date", json_null());
	}
	json_object_set_new(o, "examined", json_integer(p->examined));
	json_object_set_new(o, "count", json_integer(p->matched));
	json_object_set_new(o, "due", json_integer(p->due));
	json_object_set_new(o, "missed", json_integer(p->missed));
	json_object_set_new(o, "already_sent", json_integer(p->sent));
	json_object_set_new(o, "errors", json_integer(p->errors));
	json_object_set(o, "sample", p->sample);
	api_reply_json(p->rq, 200, o);
}

static void pv_sample(struct preview *p, const struct pv_hit *h, int sent)
{
	if (json_array_size(p->sample) >= SAMPLE_MAX)
		return;
	const struct occ_hit *x = &h->d.hit;
	char d[40], jd[40];
	snprintf(d, sizeof d, "%04d-%02d-%02d", x->date.y, x->date.m, x->date.d);
	snprintf(jd, sizeof jd, "%04d-%02d-%02d", x->jy, x->jm, x->jd);
	json_t *s = json_pack("{s:s, s:s?, s:s, s:s, s:s, s:i}", "contact_id", h->cid, "name",
	                      h->name, "tz", h->zone, "date", d, "jdate", jd, "year", x->year);
	json_object_set_new(s, "years", x->years >= 0 ? json_integer(x->years) : json_null());
	set_time(s, "due_at", h->d.verdict == OCC_SEND ? h->d.due_ms : 0);
	json_object_set_new(s, "missed", json_boolean(h->d.verdict == OCC_MISSED));
	json_object_set_new(s, "already_sent", json_boolean(sent));
	json_array_append_new(p->sample, s);
}

static void pv_continue(struct preview *p)
{
	pv_hits_free(p);
	if (p->last) {
		pv_answer(p);
		pv_end(p);
		return;
	}
	api_set_timeout(p->rq, PREVIEW_STEP_MS);
	segment_scan_next(p->sc);
}

static void pv_on_idem(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct preview *p = arg;
	if (api_replied(p->rq)) {
		pv_end(p);
		return;
	}
	if (api_reply_redis_failure(p->rq, rep)) {
		pv_end(p);
		return;
	}
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != p->nhits) {
		api_reply_error(p->rq, 503, "unavailable", NULL, "unexpected store answer");
		pv_end(p);
		return;
	}
	for (size_t i = 0; i < p->nhits; i++) {
		int sent = rep->element[i]->type != REDIS_REPLY_NIL;
		p->sent += sent;
		pv_sample(p, &p->hits[i], sent);
	}
	pv_continue(p);
}

static void pv_on_batch(struct segment_scan *sc, void *arg, const char *const *ids, size_t n,
                        const char *cursor, int done, int err)
{
	(void)cursor;
	struct preview *p = arg;
	struct app *app = api_app(p->rq);
	const struct config *cfg = app->cfg;
	if (api_replied(p->rq)) { /* the deadline passed or the server stops */
		pv_end(p);
		return;
	}
	if (err) {
		api_reply_error(p->rq, 503, "unavailable", NULL,
		                "the contact walk failed; retry later");
		pv_end(p);
		return;
	}
	p->last = done;
	p->examined += (long long)n;
	p->hits = n ? xcalloc(n, sizeof *p->hits) : NULL;
	for (size_t i = 0; i < n; i++) {
		const char *tz = segment_scan_value(sc, i, 0);
		const char *created = segment_scan_value(sc, i, 1);
		const char *name = segment_scan_value(sc, i, 2);
		const char *raw = p->nfields > 3 ? segment_scan_value(sc, i, 3) : NULL;
		struct pv_hit *h = &p->hits[p->nhits];
		const char *zone;
		int rc = occ_evaluate(p->rule, tz, created, raw, cfg->contacts_default_tz, p->now,
		                      p->has_day ? &p->day : NULL, &p->defw,
		                      cfg->occasions_grace_ms, &h->d, &zone);
		if (rc == -ENOENT)
			continue;
		if (rc < 0) {
			p->errors++;
			continue;
		}
		if (h->d.verdict == OCC_NOT_TODAY)
			continue;
		p->matched++;
		if (h->d.verdict == OCC_MISSED)
			p->missed++;
		else
			p->due++;
		if (strlen(ids[i]) >= sizeof h->cid)
			continue;
		snprintf(h->cid, sizeof h->cid, "%s", ids[i]);
		snprintf(h->zone, sizeof h->zone, "%s", zone);
		h->name = name ? xstrdup(name) : NULL;
		occ_idem_key(p->rule->id, h->cid, h->d.hit.year, h->idem, sizeof h->idem);
		p->nhits++;
	}
	if (p->nhits == 0) {
		pv_continue(p);
		return;
	}
	const char **keys = xcalloc(p->nhits, sizeof *keys);
	for (size_t i = 0; i < p->nhits; i++)
		keys[i] = p->hits[i].idem;
	store_occ_idem_check(app->st, keys, p->nhits, pv_on_idem, p);
	free(keys);
}

static void pv_on_segment(void *arg, struct segment *seg, int err, const char *reason)
{
	struct preview *p = arg;
	struct app *app = api_app(p->rq);
	if (err == -EIO) {
		api_reply_error(p->rq, 503, "unavailable", NULL, "the store is unavailable");
	} else if (err == -ENOENT) {
		api_reply_error(p->rq, 409, "conflict", "segment",
		                "the rule's segment does not exist");
	} else if (err < 0) {
		api_reply_error(p->rq, 409, "conflict", "segment",
		                "the rule's segment is invalid: %s", reason ? reason : "");
	} else {
		p->seg = seg;
		p->fields[0] = "tz";
		p->fields[1] = "created";
		p->fields[2] = "name";
		p->nfields = 3;
		occ_rule_field(p->rule, p->field, sizeof p->field);
		if (*p->field)
			p->fields[p->nfields++] = p->field;
		struct segment_scan_opts o = {.fields = p->fields, .nfields = p->nfields};
		api_set_timeout(p->rq, PREVIEW_STEP_MS);
		p->sc = segment_scan_start_opts(app->st, p->seg, p->now, "", PREVIEW_BATCH, &o,
		                                pv_on_batch, p);
		return;
	}
	pv_end(p);
}

static void pv_on_rule(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct preview *p = arg;
	struct app *app = api_app(p->rq);
	if (api_reply_redis_failure(p->rq, rep)) {
		pv_end(p);
		return;
	}
	const char *txt = one_rule(rep) ? hash_get(rep->element[0], "json") : NULL;
	json_t *def = txt ? json_loads(txt, 0, NULL) : NULL;
	const char *field;
	char reason[160];
	if (!def || occ_rule_parse(def, 1, &p->rule, &field, reason, sizeof reason) < 0) {
		json_decref(def);
		api_reply_error(p->rq, 404, "not_found", NULL, "no such occasion rule");
		pv_end(p);
		return;
	}
	json_decref(def);
	occ_segment_load(app->st, p->rule, pv_on_segment, p);
}

static void h_preview(struct api_req *rq)
{
	struct app *app = api_app(rq);
	const char *id = path_id(rq);
	char date[16];
	if (!id || query_date(rq, date, sizeof date) < 0 || !api_store_ready(rq))
		return;
	struct preview *p = xcalloc(1, sizeof *p);
	p->rq = rq;
	p->now = now_ms();
	p->sample = json_array();
	if (*date && occ_day_parse(date, &p->day) == 0)
		p->has_day = 1;
	if (occ_window_parse(app->cfg->occasions_window, &p->defw) < 0)
		p->defw.set = 0;
	api_hold(rq);
	store_occ_get(app->st, id, pv_on_rule, p);
}

const struct api_route api_occasion_routes[] = {
    {"GET", "/v1/occasions", ROLE_VIEWER, API_BODY_NONE, h_list, NULL, NULL},
    {"POST", "/v1/occasions", ROLE_MARKETER, API_BODY_JSON, h_create, NULL, NULL},
    {"GET", "/v1/occasions/{id}", ROLE_VIEWER, API_BODY_NONE, h_get, NULL, NULL},
    {"PUT", "/v1/occasions/{id}", ROLE_MARKETER, API_BODY_JSON, h_put, NULL, NULL},
    {"DELETE", "/v1/occasions/{id}", ROLE_MARKETER, API_BODY_NONE, h_delete, NULL, NULL},
    {"POST", "/v1/occasions/{id}/preview", ROLE_MARKETER, API_BODY_NONE, h_preview, NULL, NULL},
    {"POST", "/v1/occasions/{id}/run", ROLE_ADMIN, API_BODY_NONE, h_run, NULL, NULL},
};
const size_t api_occasion_nroutes = ARRAY_SIZE(api_occasion_routes);
