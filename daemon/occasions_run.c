/*
 * occasions_run.c - the occasion evaluator: one timer that looks for runs
 * to do (an operator's run waiting, a rule's periodic pass due, a run whose
 * instance died), and the jobs that carry them out batch by batch: walk
 * the audience (segment_scan, NULL segment = every contact) reading only
 * tz, created and the rule's date field; decide per contact with
 * occ_evaluate(); skip what was already sent (MGET of the idempotency
 * keys); read the whole contact only for what is left, render the rule's
 * template for it (tplset_render + tpl_context) and create the message
 * (store_msg_create, key occ:{rule}:{cid}:{year}); then save the resume
 * point and the counters (lua/occ_run.lua, owner-checked) and ask for the
 * next batch.
 *
 * Owns its timer, the jobs and their scans, compiled templates and parsed
 * segments.  Never writes message state (msg_create.lua does), never
 * decides consent, quiet hours or caps (the dispatcher does), never names
 * a key (store_occasions.c and the store functions do).
 *
 * Crash safety: the resume point moves only after every message of the
 * batch was created or found created, so a run taken over after a kill -9
 * repeats at most one batch, and the idempotency keys make that repeat
 * create nothing.  Limits: MAX_JOBS runs at once per instance, one batch
 * ([occasions] batch contacts) in memory per run, STORE_OCC_MAX rules.
 */
#include "occasions_run.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "log.h"
#include "prefs.h"
#include "store_occasions.h"
#include "tplset.h"
#include "tz.h"
#include "util.h"

#define MAX_JOBS    2
#define TICK_MIN_MS 500
#define TICK_MAX_MS 60000

enum { C_EXAMINED, C_MATCHED, C_CREATED, C_DUP, C_MISSED, C_ERRORS, C__N };
static const char *const counter_names[C__N] = {"examined", "matched", "created",
                                                "dup",      "missed",  "errors"};

struct job;

struct item {
	struct job *j;
	char cid[64];
	char idem[OCC_ID_MAX + 96];
	struct occ_hit hit;
	int64_t due;
	char msg_id[ID_LEN + 1];
};

struct job {
	struct occ_runner *r;
	struct job *next;
	char which[8]; /* "run" (an operator's) or "live" (the periodic pass) */
	char id[OCC_ID_MAX + 1];
	struct occ_rule *rule;
	int has_day;
	struct occ_day day;
	char *cursor; /* resume point the run record holds */
	struct segment *seg;
	struct segment_scan *sc;
	struct tplset *ts;
	char field[OCC_ATTR_MAX + 3];
	const char *fields[3];
	size_t nfields;
	struct item *items;
	size_t nitems;
	char *next_cursor;
	int last;    /* the batch in hand is the walk's last */
	int quiet;   /* a pass with nothing to do: no log line */
	int pending; /* Redis commands in flight for this job */
	int failed;  /* one of them got no answer: the batch is not saved */
	long long cnt[C__N];
	int64_t now;
};

struct claim {
	struct occ_runner *r;
	char which[8];
	char id[OCC_ID_MAX + 1];
};

struct occ_runner {
	uv_loop_t *loop;
	struct store *st;
	const struct config *cfg;
	char *owner;
	int chan_on[ADDR_KINDS];
	struct occ_window defw;
	uv_timer_t timer;
	int timer_open, started, stopping, closing;
	int inflight; /* runner-level commands: id lists, claims, releases */
	int ticking, again;
	char **ids;
	size_t nids, idx;
	int phase; /* 0: claim the rule's "run", 1: its "live" pass */
	struct job *jobs;
	int njobs;
	void (*close_cb)(void *);
	void *close_arg;
};

static void tick(struct occ_runner *r);
static void claim_next(struct occ_runner *r);
static void job_end(struct job *j);

/* Lifetime ---------------------------------------------------------------- */

static int64_t tick_period(const struct config *cfg)
{
	int64_t t = cfg->occasions_lease_ms / 3;
	return t < TICK_MIN_MS ? TICK_MIN_MS : t > TICK_MAX_MS ? TICK_MAX_MS : t;
}

static void set_config(struct occ_runner *r, const struct config *cfg)
{
	r->cfg = cfg;
	if (occ_window_parse(cfg->occasions_window, &r->defw) < 0)
		r->defw.set = 0; /* the config check refuses it; whole day */
}

struct occ_runner *occ_runner_new(uv_loop_t *loop, struct store *st, const struct config *cfg,
                                  const char *owner, struct chan *chans, size_t nchans)
{
	struct occ_runner *r = xcalloc(1, sizeof *r);
	r->loop = loop;
	r->st = st;
	r->owner = xstrdup(owner);
	set_config(r, cfg);
	for (int k = 0; k < ADDR_KINDS; k++)
		r->chan_on[k] = chan_find(chans, nchans, addr_kind_name((enum addr_kind)k)) != NULL;
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	r->timer_open = 1;
	return r;
}

static void on_timer(uv_timer_t *t)
{
	tick(t->data);
}

void occ_runner_start(struct occ_runner *r)
{
	r->started = 1;
	uv_timer_start(&r->timer, on_timer, 200, (uint64_t)tick_period(r->cfg));
}

void occ_runner_reconfigure(struct occ_runner *r, const struct config *cfg)
{
	set_config(r, cfg);
	if (r->started && !r->stopping)
		uv_timer_start(&r->timer, on_timer, (uint64_t)tick_period(cfg),
		               (uint64_t)tick_period(cfg));
}

void occ_runner_kick(struct occ_runner *r)
{
	if (r && r->started && !r->stopping)
		tick(r);
}

void occ_runner_stop(struct occ_runner *r)
{
	if (r->stopping)
		return;
	r->stopping = 1;
	if (r->timer_open)
		uv_timer_stop(&r->timer);
}

static void maybe_closed(struct occ_runner *r)
{
	if (!r->closing || r->timer_open || r->inflight > 0 || r->njobs > 0)
		return;
	void (*cb)(void *) = r->close_cb;
	void *arg = r->close_arg;
	free(r->owner);
	free(r);
	if (cb)
		cb(arg);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct occ_runner *r = h->data;
	r->timer_open = 0;
	maybe_closed(r);
}

void occ_runner_close(struct occ_runner *r, void (*cb)(void *arg), void *arg)
{
	occ_runner_stop(r);
	r->closing = 1;
	r->close_cb = cb;
	r->close_arg = arg;
	uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

/* Segments ---------------------------------------------------------------- */

struct segload {
	occ_segment_cb cb;
	void *arg;
};

static void seg_parse(const json_t *def, occ_segment_cb cb, void *arg)
{
	struct segment *s = NULL;
	const char *field = "", *reason = "invalid";
	if (segment_parse(def, &s, &field, &reason) < 0) {
		char why[256];
		snprintf(why, sizeof why, "%s: %s", field ? field : "",
		         reason ? reason : "invalid");
		cb(arg, NULL, -EINVAL, why);
		return;
	}
	cb(arg, s, 0, NULL);
}

static void on_segment_read(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct segload sl = *(struct segload *)arg;
	free(arg);
	if (!rep || rep->type != REDIS_REPLY_ARRAY) {
		sl.cb(sl.arg, NULL, -EIO, "redis");
		return;
	}
	const char *txt = rep->elements > 0 ? reply_str(rep->element[0]) : NULL;
	if (!txt) {
		sl.cb(sl.arg, NULL, -ENOENT, "no such segment");
		return;
	}
	json_t *def = json_loads(txt, 0, NULL);
	if (!def) {
		sl.cb(sl.arg, NULL, -EINVAL, "stored definition is not JSON");
		return;
	}
	seg_parse(def, sl.cb, sl.arg);
	json_decref(def);
}

void occ_segment_load(struct store *st, const struct occ_rule *rule, occ_segment_cb cb, void *arg)
{
	if (!rule->segment) {
		cb(arg, NULL, 0, NULL);
		return;
	}
	if (json_is_object(rule->segment)) {
		seg_parse(rule->segment, cb, arg);
		return;
	}
	struct segload *sl = xcalloc(1, sizeof *sl);
	sl->cb = cb;
	sl->arg = arg;
	store_segment_read(st, json_string_value(rule->segment), on_segment_read, sl);
}

/* Jobs -------------------------------------------------------------------- */

static void free_items(struct job *j)
{
	free(j->items);
	j->items = NULL;
	j->nitems = 0;
}

static void on_job_cmd_done(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	(void)rep;
	struct job *j = arg;
	j->pending--;
	job_end(j);
}

static void job_end(struct job *j)
{
	struct occ_runner *r = j->r;
	if (j->pending > 0)
		return;
	if (j->sc)
		segment_scan_free(j->sc);
	segment_free(j->seg);
	tplset_free(j->ts);
	occ_rule_free(j->rule);
	free(j->cursor);
	free(j->next_cursor);
	free_items(j);
	struct job **pp = &r->jobs;
	while (*pp && *pp != j)
		pp = &(*pp)->next;
	if (*pp)
		*pp = j->next;
	r->njobs--;
	free(j);
	if (r->closing) {
		maybe_closed(r);
		return;
	}
	if (!r->stopping)
		tick(r); /* room for another run */
}

/* Give the run up for now; the lease stays ours, so the next tick here (or
 * another instance after the lease) resumes from the last saved batch. */
static void job_abort(struct job *j, const char *why)
{
	log_warnx("occasions",
	          "rule=%s run=%s event=interrupted reason=%s (resumes from the last "
	          "saved batch)",
	          j->id, j->which, log_q(why));
	job_end(j);
}

static void job_fail(struct job *j, const char *why)
{
	log_warnx("occasions", "rule=%s run=%s event=failed reason=%s", j->id, j->which,
	          log_q(why));
	j->pending++;
	store_occ_run_fail(j->r->st, j->which, j->id, j->r->owner, now_ms(), why, on_job_cmd_done,
	                   j);
}

/* Stopping: hand the lease back so the work continues elsewhere at once. */
static void job_release(struct job *j)
{
	log_info("occasions", "rule=%s run=%s event=released cursor=%s", j->id, j->which,
	         log_q(j->cursor ? j->cursor : ""));
	j->pending++;
	store_occ_run_release(j->r->st, j->which, j->id, j->r->owner, on_job_cmd_done, j);
}

static void step(struct job *j);

/* Rendering and creating -------------------------------------------------- */

static int pick_kind(struct job *j, const redisReply *c, const char *zone)
{
	int k = addr_kind_parse(j->rule->channel);
	if (k >= 0)
		return k;
	struct prefs p;
	const char *field, *reason;
	const char *pt = hash_get(c, "prefs");
	json_t *pj = pt ? json_loads(pt, 0, NULL) : NULL;
	if (prefs_parse(pj, &p, &field, &reason) < 0)
		prefs_parse(NULL, &p, &field, &reason);
	json_decref(pj);
	int cat = category_parse(j->rule->category);
	struct prefs_input in = {
	    .prefs = &p,
	    .tz = zone,
	    .requested = -1,
	    .category = cat < 0 ? CAT_OCCASION : (enum category)cat,
	    .now_ms = j->now,
	    .channel_enabled = j->r->chan_on,
	};
	for (int i = 0; i < ADDR_KINDS; i++) {
		char f[16];
		snprintf(f, sizeof f, "a:%s", addr_kind_name((enum addr_kind)i));
		in.addr[i] = hash_get(c, f);
	}
	struct prefs_decision dec;
	prefs_decide(&in, &dec);
	if (dec.channel >= 0)
		return dec.channel;
	for (int i = 0; i < ADDR_KINDS; i++)
		if (j->r->chan_on[i] && in.addr[i] && *in.addr[i])
			return i;
	return ADDR_SMS; /* the dispatcher records why it cannot go out */
}

static json_t *event_of(const struct job *j, const struct occ_hit *h)
{
	char d[40], jd[40];
	snprintf(d, sizeof d, "%04d-%02d-%02d", h->date.y, h->date.m, h->date.d);
	snprintf(jd, sizeof jd, "%04d-%02d-%02d", h->jy, h->jm, h->jd);
	json_t *o =
	    json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "id", j->rule->id, "name",
	              j->rule->name ? j->rule->name : j->rule->id, "kind",
	              occ_kind_name(j->rule->kind), "date", d, "jdate", jd, "year", h->year);
	json_object_set_new(o, "years", h->years >= 0 ? json_integer(h->years) : json_null());
	return json_pack("{s:o}", "occasion", o);
}

static void on_created(struct redis *rd, redisReply *rep, void *arg);

/* 0 when a create was issued, -1 when the contact is skipped (counted). */
static int render_create(struct item *it, const redisReply *c)
{
	struct job *j = it->j;
	struct occ_runner *r = j->r;
	const struct config *cfg = r->cfg;
	const char *tz = hash_get(c, "tz"), *lang = hash_get(c, "lang");
	const char *zone = tz && *tz && tz_valid(tz) ? tz : cfg->contacts_default_tz;
	if (!lang || !*lang)
		lang = cfg->contacts_default_lang;
	int kind = pick_kind(j, c, zone);
	json_t *ev = event_of(j, &it->hit);
	json_t *ctx = tpl_context(c, ev, NULL);
	struct tpl_rendered out;
	struct tmpl_error terr;
	memset(&out, 0, sizeof out);
	memset(&terr, 0, sizeof terr);
	int rc = tplset_render(j->ts, addr_kind_name((enum addr_kind)kind), lang, ctx, zone, &out,
	                       &terr);
	for (int k = 0; rc == -ENOENT && k < ADDR_KINDS && addr_kind_parse(j->rule->channel) < 0;
	     k++) {
		if (k == kind || !r->chan_on[k])
			continue;
		rc = tplset_render(j->ts, addr_kind_name((enum addr_kind)k), lang, ctx, zone, &out,
		                   &terr);
		if (rc == 0)
			kind = k;
	}
	json_decref(ctx);
	json_decref(ev);
	if (rc < 0 || (kind != ADDR_EMAIL && (!out.text || !*out.text))) {
		log_warnx("occasions",
		          "rule=%s contact=%s template=%s event=render_failed err=%d "
		          "reason=%s",
		          j->id, it->cid, j->rule->tmpl, rc,
		          log_q(rc == -ENOENT ? "no variant for the channel"
		                : rc < 0      ? terr.reason
		                              : "empty text"));
		tpl_rendered_free(&out);
		j->cnt[C_ERRORS]++;
		return -1;
	}
	char year[16];
	snprintf(year, sizeof year, "%d", it->hit.year);
	const char *fields[10];
	size_t nf = 0;
	if (out.text) {
		fields[nf++] = "text";
		fields[nf++] = out.text;
	}
	if (kind == ADDR_EMAIL && out.subject && *out.subject) {
		fields[nf++] = "subject";
		fields[nf++] = out.subject;
	}
	if (kind == ADDR_EMAIL && out.html) {
		fields[nf++] = "html";
		fields[nf++] = out.html;
	}
	fields[nf++] = "occ";
	fields[nf++] = j->rule->id;
	fields[nf++] = "occ_year";
	fields[nf++] = year;
	int concrete = addr_kind_parse(j->rule->channel) >= 0;
	struct msg_new m = {.contact_id = it->cid,
	                    .lane = concrete ? j->rule->channel : "preferred",
	                    .channel = j->rule->channel,
	                    .category = j->rule->category,
	                    .idem = it->idem,
	                    .idem_ttl_s = cfg->occasions_idem_ttl_ms / 1000,
	                    .now = now_ms(),
	                    .due = it->due,
	                    .expires = it->due + cfg->occasions_expire_ms,
	                    .fields = fields,
	                    .nfields = nf};
	if (m.due < m.now)
		m.due = m.now;
	m.expires = m.due + cfg->occasions_expire_ms;
	j->pending++;
	store_msg_create(r->st, &m, it->msg_id, on_created, it);
	tpl_rendered_free(&out);
	return 0;
}

static void batch_maybe_done(struct job *j)
{
	if (j->pending > 0)
		return;
	if (j->failed) {
		job_abort(j, "redis did not answer during a batch");
		return;
	}
	step(j);
}

static void on_created(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct item *it = arg;
	struct job *j = it->j;
	j->pending--;
	const char *st = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
	                     ? reply_str(rep->element[0])
	                     : NULL;
	if (!st) {
		j->failed = 1;
	} else if (strcmp(st, "ok") == 0) {
		j->cnt[C_CREATED]++;
		log_debug("occasions", "rule=%s contact=%s year=%d msg=%s event=created", j->id,
		          it->cid, it->hit.year, it->msg_id);
	} else if (strcmp(st, "dup") == 0) {
		j->cnt[C_DUP]++;
	}
	/* no_contact: deleted since the scan; nothing to send */
	batch_maybe_done(j);
}

static void on_contact(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct item *it = arg;
	struct job *j = it->j;
	j->pending--;
	if (!rep || rep->type != REDIS_REPLY_ARRAY)
		j->failed = 1;
	else if (rep->elements > 0 && !j->failed)
		render_create(it, rep);
	batch_maybe_done(j);
}

static void on_idem(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct job *j = arg;
	j->pending--;
	if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements != j->nitems) {
		j->failed = 1;
		batch_maybe_done(j);
		return;
	}
	for (size_t i = 0; i < j->nitems; i++) {
		if (rep->element[i]->type != REDIS_REPLY_NIL) {
			j->cnt[C_DUP]++;
			continue;
		}
		j->pending++;
		store_contact_fields(j->r->st, j->items[i].cid, NULL, 0, on_contact, &j->items[i]);
	}
	batch_maybe_done(j);
}

/* The walk ---------------------------------------------------------------- */

static void on_batch(struct segment_scan *sc, void *arg, const char *const *ids, size_t n,
                     const char *cursor, int done, int err)
{
	(void)sc;
	struct job *j = arg;
	struct occ_runner *r = j->r;
	if (err) {
		job_abort(j, "the contact walk failed");
		return;
	}
	j->now = now_ms();
	free(j->next_cursor);
	j->next_cursor = xstrdup(cursor ? cursor : "");
	j->last = done;
	free_items(j);
	j->items = n ? xcalloc(n, sizeof *j->items) : NULL;
	j->cnt[C_EXAMINED] += (long long)n;
	for (size_t i = 0; i < n; i++) {
		const char *tz = segment_scan_value(sc, i, 0);
		const char *created = segment_scan_value(sc, i, 1);
		const char *raw = j->nfields > 2 ? segment_scan_value(sc, i, 2) : NULL;
		struct occ_decision d;
		const char *zone;
		int rc = occ_evaluate(j->rule, tz, created, raw, r->cfg->contacts_default_tz,
		                      j->now, j->has_day ? &j->day : NULL, &r->defw,
		                      r->cfg->occasions_grace_ms, &d, &zone);
		if (rc == -ENOENT)
			continue;
		if (rc < 0) {
			j->cnt[C_ERRORS]++;
			log_debug("occasions", "rule=%s contact=%s event=bad_date", j->id, ids[i]);
			continue;
		}
		if (d.verdict == OCC_NOT_TODAY)
			continue;
		j->cnt[C_MATCHED]++;
		if (d.verdict == OCC_MISSED) {
			j->cnt[C_MISSED]++;
			continue;
		}
		if (strlen(ids[i]) >= sizeof j->items[0].cid)
			continue;
		struct item *it = &j->items[j->nitems++];
		it->j = j;
		snprintf(it->cid, sizeof it->cid, "%s", ids[i]);
		it->hit = d.hit;
		it->due = j->has_day ? j->now : d.due_ms;
		occ_idem_key(j->id, it->cid, d.hit.year, it->idem, sizeof it->idem);
	}
	if (j->nitems == 0) {
		step(j);
		return;
	}
	const char **keys = xcalloc(j->nitems, sizeof *keys);
	for (size_t i = 0; i < j->nitems; i++)
		keys[i] = j->items[i].idem;
	j->pending++;
	store_occ_idem_check(r->st, keys, j->nitems, on_idem, j);
	free(keys);
}

static void on_step(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct job *j = arg;
	struct occ_runner *r = j->r;
	j->pending--;
	if (!rep || rep->type != REDIS_REPLY_INTEGER) {
		job_abort(j, "saving the batch failed");
		return;
	}
	if (rep->integer == 0) {
		log_notice("occasions",
		           "rule=%s run=%s event=lost_lease (another instance took it over)", j->id,
		           j->which);
		job_end(j);
		return;
	}
	free(j->cursor);
	j->cursor = j->next_cursor;
	j->next_cursor = NULL;
	free_items(j);
	if (j->last) {
		if (!j->quiet)
			log_info("occasions", "rule=%s run=%s event=done", j->id, j->which);
		job_end(j);
		return;
	}
	if (r->stopping) {
		job_release(j);
		return;
	}
	segment_scan_next(j->sc);
}

static void step(struct job *j)
{
	struct occ_runner *r = j->r;
	long long v[C__N];
	memcpy(v, j->cnt, sizeof v);
	memset(j->cnt, 0, sizeof j->cnt);
	j->pending++;
	store_occ_run_step(r->st, j->which, j->id, r->owner, now_ms(), r->cfg->occasions_lease_ms,
	                   j->next_cursor ? j->next_cursor : "", j->last, counter_names, v, C__N,
	                   on_step, j);
}

static void walk_start(struct job *j)
{
	struct occ_runner *r = j->r;
	j->fields[0] = "tz";
	j->fields[1] = "created";
	j->nfields = 2;
	occ_rule_field(j->rule, j->field, sizeof j->field);
	if (*j->field)
		j->fields[j->nfields++] = j->field;
	struct segment_scan_opts o = {.fields = j->fields, .nfields = j->nfields};
	log_info("occasions", "rule=%s run=%s event=walk date=%s cursor=%s", j->id, j->which,
	         j->has_day ? "given" : "local_today", log_q(j->cursor ? j->cursor : ""));
	j->sc = segment_scan_start_opts(r->st, j->seg, now_ms(), j->cursor ? j->cursor : "",
	                                (size_t)r->cfg->occasions_batch, &o, on_batch, j);
}

static void on_segment(void *arg, struct segment *seg, int err, const char *reason)
{
	struct job *j = arg;
	j->pending--;
	if (j->r->stopping) {
		segment_free(seg);
		job_release(j);
		return;
	}
	if (err == -EIO) {
		job_abort(j, "reading the segment failed");
		return;
	}
	if (err < 0) {
		char why[300];
		snprintf(why, sizeof why, "segment: %s", reason ? reason : "invalid");
		job_fail(j, why);
		return;
	}
	j->seg = seg;
	walk_start(j);
}

static void on_template(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct job *j = arg;
	j->pending--;
	if (j->r->stopping) {
		job_release(j);
		return;
	}
	if (!rep || rep->type != REDIS_REPLY_ARRAY) {
		job_abort(j, "reading the template failed");
		return;
	}
	const char *txt = rep->elements > 0 ? reply_str(rep->element[0]) : NULL;
	if (!txt) {
		job_fail(j, "template not found");
		return;
	}
	json_t *def = json_loads(txt, 0, NULL);
	const char *field = "";
	struct tmpl_error terr;
	memset(&terr, 0, sizeof terr);
	int rc = def ? tplset_parse(def, &j->ts, &field, &terr) : -EINVAL;
	json_decref(def);
	if (rc < 0) {
		char why[300];
		snprintf(why, sizeof why, "template invalid: %s: %s", field ? field : "",
		         terr.reason);
		job_fail(j, why);
		return;
	}
	j->pending++;
	occ_segment_load(j->r->st, j->rule, on_segment, j);
}

/* A claimed run: {ok, date, cursor, json, v, started}. */
static void job_begin(struct occ_runner *r, const char *which, const char *id,
                      const redisReply *rep)
{
	struct job *j = xcalloc(1, sizeof *j);
	j->r = r;
	snprintf(j->which, sizeof j->which, "%s", which);
	snprintf(j->id, sizeof j->id, "%s", id);
	j->next = r->jobs;
	r->jobs = j;
	r->njobs++;
	const char *date = reply_str(rep->element[1]);
	const char *cursor = reply_str(rep->element[2]);
	const char *txt = reply_str(rep->element[3]);
	j->cursor = xstrdup(cursor ? cursor : "");
	j->next_cursor = xstrdup(j->cursor);
	json_t *def = txt ? json_loads(txt, 0, NULL) : NULL;
	const char *field = "";
	char reason[160] = "not JSON";
	int rc = def ? occ_rule_parse(def, 1, &j->rule, &field, reason, sizeof reason) : -EINVAL;
	json_decref(def);
	if (rc < 0) {
		char why[256];
		snprintf(why, sizeof why, "stored rule invalid: %s: %s", field, reason);
		job_fail(j, why);
		return;
	}
	if (date && *date) {
		if (occ_day_parse(date, &j->day) < 0) {
			job_fail(j, "invalid date");
			return;
		}
		j->has_day = 1;
	}
	int64_t now = now_ms();
	if (strcmp(which, "live") == 0 && (!j->rule->enabled || !occ_may_fire(j->rule, now))) {
		/* Nothing can be due anywhere today: close the pass at once. */
		j->last = 1;
		j->quiet = 1;
		free(j->next_cursor);
		j->next_cursor = xstrdup("");
		step(j);
		return;
	}
	log_info("occasions", "rule=%s run=%s event=start date=%s", j->id, which,
	         log_q(date ? date : ""));
	j->pending++;
	store_template_get(r->st, j->rule->tmpl, on_template, j);
}

/* Ticks and claims -------------------------------------------------------- */

static struct job *job_find(struct occ_runner *r, const char *which, const char *id)
{
	for (struct job *j = r->jobs; j; j = j->next)
		if (strcmp(j->which, which) == 0 && strcmp(j->id, id) == 0)
			return j;
	return NULL;
}

static void tick_end(struct occ_runner *r)
{
	for (size_t i = 0; i < r->nids; i++)
		free(r->ids[i]);
	free(r->ids);
	r->ids = NULL;
	r->nids = r->idx = 0;
	r->ticking = 0;
	if (r->closing) {
		maybe_closed(r);
		return;
	}
	if (r->again && !r->stopping) {
		r->again = 0;
		tick(r);
	}
}

static void on_released(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	(void)rep;
	struct occ_runner *r = arg;
	r->inflight--;
	maybe_closed(r);
}

static void on_claim(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct claim *c = arg;
	struct occ_runner *r = c->r;
	r->inflight--;
	const char *st = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
	                     ? reply_str(rep->element[0])
	                     : NULL;
	if (st && strcmp(st, "ok") == 0 && rep->elements >= 6) {
		if (r->stopping) {
			r->inflight++;
			store_occ_run_release(r->st, c->which, c->id, r->owner, on_released, r);
		} else {
			job_begin(r, c->which, c->id, rep);
		}
	}
	free(c);
	claim_next(r);
}

static void claim_next(struct occ_runner *r)
{
	while (r->idx < r->nids && !r->stopping && r->njobs < MAX_JOBS) {
		const char *which = r->phase ? "live" : "run";
		const char *id = r->ids[r->idx];
		if (r->phase) {
			r->phase = 0;
			r->idx++;
		} else {
			r->phase = 1;
		}
		if (job_find(r, which, id))
			continue;
		struct claim *c = xcalloc(1, sizeof *c);
		c->r = r;
		snprintf(c->which, sizeof c->which, "%s", which);
		snprintf(c->id, sizeof c->id, "%s", id);
		r->inflight++;
		store_occ_run_claim(r->st, which, id, r->owner, now_ms(),
		                    r->cfg->occasions_lease_ms, r->cfg->occasions_interval_ms,
		                    on_claim, c);
		return;
	}
	tick_end(r);
}

static void on_ids(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct occ_runner *r = arg;
	r->inflight--;
	if (!rep || rep->type != REDIS_REPLY_ARRAY || r->stopping) {
		tick_end(r);
		return;
	}
	r->ids = xcalloc(rep->elements + 1, sizeof *r->ids);
	for (size_t i = 0; i < rep->elements; i++) {
		const char *s = reply_str(rep->element[i]);
		if (s && occ_id_valid(s))
			r->ids[r->nids++] = xstrdup(s);
	}
	r->idx = 0;
	r->phase = 0;
	claim_next(r);
}

static void tick(struct occ_runner *r)
{
	if (r->ticking) {
		r->again = 1;
		return;
	}
	if (!r->started || r->stopping || !r->cfg->occasions_enabled || r->njobs >= MAX_JOBS ||
	    !redis_is_up(r->st->r))
		return;
	r->ticking = 1;
	r->inflight++;
	store_occ_ids(r->st, on_ids, r);
}
