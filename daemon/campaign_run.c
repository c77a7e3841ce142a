/*
 * campaign_run.c - drives active campaigns: scheduled -> running at the
 * start time, fan-out of the segment into the recipient list, and the pump
 * from the list into messages.  Owns one timer and one entry per active
 * campaign; every write goes through lua/camp_*.lua, so any number of
 * instances may run this at once: the fan-out cursor is compare-and-set
 * (a lease only saves duplicated work), the pump pops atomically.
 *
 * Limits: fan-out batches of [campaigns] fanout_batch contacts; the pump
 * makes at most [campaigns] pump_batch messages per call and keeps at most
 * [campaigns] window messages of one campaign between made and ended.
 */
#include "campaign_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "campaign.h"
#include "log.h"
#include "segment.h"
#include "util.h"

#define FAN_LEASE_MS 15000
#define FAN_AHEAD    2 /* batches appended while the scan reads the next one */

struct camp_entry {
	struct camp_runner *r;
	struct camp_entry *next;
	char id[72];
	int seen; /* in the last active list */
	int fetching, scanning, pumping, starting;
	int pump_again;
	struct segment *seg;
	struct campaign c;
	int have_c;
	char seed[40];
	char *cursor;  /* fan-out cursor the next batch must find */
	int fans;      /* camp_fan calls in flight (at most FAN_AHEAD) */
	int run_done;  /* a recurring campaign's run ended */
	int want_next; /* a batch was held back by FAN_AHEAD */
	struct segment_scan *scan;
	char **pending; /* batch awaiting camp_fan */
};

struct camp_runner {
	uv_loop_t *loop;
	struct store *st;
	const struct config *cfg;
	char owner[160];
	uv_timer_t timer;
	int listing;
	int closing, refs;
	struct camp_entry *entries;
	void (*close_cb)(void *);
	void *close_arg;
};

static void entry_free(struct camp_entry *e)
{
	if (e->scan)
		segment_scan_free(e->scan);
	segment_free(e->seg);
	if (e->have_c)
		camp_release(&e->c);
	free(e->cursor);
	free(e);
}

/* The close callback runs once the timer is closed and every Redis call
 * made on behalf of the runner has answered (they always answer: success,
 * error or NULL at the connection's close). */
static void runner_unref(struct camp_runner *r)
{
	if (--r->refs == 0 && r->closing && r->close_cb)
		r->close_cb(r->close_arg);
}

/* Pump ------------------------------------------------------------------- */

static void pump(struct camp_entry *e);

static void on_pumped(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct camp_entry *e = arg;
	struct camp_runner *r = e->r;
	e->pumping = 0;
	const char *st = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
	                     ? reply_str(rep->element[0])
	                     : NULL;
	if (!st) {
		if (rep && rep->type == REDIS_REPLY_ERROR)
			log_err("campaign", "camp=%s pump failed reply=%s", e->id, log_q(rep->str));
	} else if (strcmp(st, "ok") == 0 && rep->elements >= 3) {
		long long made = rep->element[1]->integer;
		log_debug("campaign", "camp=%s pumped=%lld left=%lld", e->id, made,
		          rep->element[2]->integer);
		if (made >= r->cfg->camp_pump_batch && !r->closing)
			e->pump_again = 1;
	} else if (strcmp(st, "completed") == 0) {
		log_info("campaign", "camp=%s state=completed", e->id);
	} else if (strcmp(st, "run_done") == 0) {
		e->run_done = 1; /* the next tick schedules the next run */
	}
	if (e->pump_again && !r->closing) {
		e->pump_again = 0;
		pump(e);
	}
	runner_unref(r);
}

static void pump(struct camp_entry *e)
{
	struct camp_runner *r = e->r;
	if (e->pumping)
		return;
	e->pumping = 1;
	r->refs++;
	int n = (int)r->cfg->camp_pump_batch;
	int64_t now = now_ms();
	struct argv a;
	argv_init(&a);
	argv_add(&a, e->id);
	argv_addll(&a, now);
	argv_addll(&a, r->cfg->camp_window);
	argv_addll(&a, r->cfg->sched_message_ttl_ms);
	argv_addll(&a, (r->cfg->sched_retention_ms + 999) / 1000);
	for (int i = 0; i < n; i++) {
		char id[ID_LEN + 1];
		id_new(id, now);
		argv_add(&a, id);
	}
	store_eval(r->st, SCRIPT_CAMP_PUMP, &a, on_pumped, e);
	argv_free(&a);
}

/* Fan-out ---------------------------------------------------------------- */

static void scan_stop(struct camp_entry *e)
{
	if (e->scan) {
		segment_scan_free(e->scan);
		e->scan = NULL;
	}
	e->scanning = 0;
	e->want_next = 0;
}

struct fan_call {
	struct camp_entry *e;
	int done;
};

static void on_fanned(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct fan_call *fc = arg;
	struct camp_entry *e = fc->e;
	struct camp_runner *r = e->r;
	const char *st = rep && rep->type == REDIS_REPLY_ARRAY && rep->elements > 0
	                     ? reply_str(rep->element[0])
	                     : NULL;
	e->fans--;
	if (st && strcmp(st, "ok") == 0 && !r->closing) {
		if (fc->done) {
			log_info("campaign", "camp=%s fan-out complete", e->id);
			scan_stop(e);
		} else {
			store_camp_lease(r->st, e->id, r->owner, FAN_LEASE_MS, NULL, NULL);
			if (e->want_next && e->scan) {
				e->want_next = 0;
				segment_scan_next(e->scan);
			}
		}
		pump(e);
	} else if (e->scanning) {
		/* moved (another instance), not running any more, or Redis trouble:
		 * stop; the next tick looks again from the stored cursor. */
		log_debug("campaign", "camp=%s fan-out stopped answer=%s", e->id, log_q(st));
		scan_stop(e);
	}
	free(fc);
	runner_unref(r);
}

static void on_batch(struct segment_scan *sc, void *arg, const char *const *ids, size_t n,
                     const char *cursor, int done, int err)
{
	(void)sc;
	struct camp_entry *e = arg;
	struct camp_runner *r = e->r;
	if (err || r->closing) {
		if (err)
			log_warnx("campaign", "camp=%s segment scan failed", e->id);
		scan_stop(e);
		return;
	}
	/* Appends go out in order on one connection, each naming the cursor
	 * the one before it leaves, so the next batch can be read while this
	 * one is written: if one fails, every later one fails its
	 * compare-and-set too, and the next tick resumes from what landed. */
	struct argv a;
	argv_init(&a);
	argv_add(&a, e->id);
	argv_addll(&a, now_ms());
	argv_add(&a, e->cursor ? e->cursor : "");
	argv_add(&a, cursor ? cursor : "");
	free(e->cursor);
	e->cursor = xstrdup(cursor ? cursor : "");
	argv_add(&a, done ? "1" : "0");
	for (size_t i = 0; i < n; i++) {
		int arm = camp_assign(&e->c, e->seed, ids[i]);
		argv_add(&a, ids[i]);
		argv_add(&a, arm < 0 ? "control" : e->c.var[arm].name);
	}
	struct fan_call *fc = xcalloc(1, sizeof *fc);
	fc->e = e;
	fc->done = done;
	r->refs++;
	e->fans++;
	store_eval(r->st, SCRIPT_CAMP_FAN, &a, on_fanned, fc);
	argv_free(&a);
	if (!done) {
		if (e->fans < FAN_AHEAD)
			segment_scan_next(sc);
		else
			e->want_next = 1;
	}
}

static void on_lease(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct camp_entry *e = arg;
	struct camp_runner *r = e->r;
	if (!r->closing && rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1 && e->seg) {
		e->scan = segment_scan_start(r->st, e->seg, now_ms(), e->cursor ? e->cursor : "",
		                             (size_t)r->cfg->camp_fanout_batch, on_batch, e);
	} else {
		e->scanning = 0;
	}
	runner_unref(r);
}

/* Tick ------------------------------------------------------------------- */

static int load_definition(struct camp_entry *e, const redisReply *h)
{
	if (e->have_c)
		return 0;
	const char *def = hash_get(h, "json"), *seg = hash_get(h, "seg_json"),
	           *seed = hash_get(h, "seed");
	json_t *dj = def ? json_loads(def, 0, NULL) : NULL;
	json_t *sj = seg ? json_loads(seg, 0, NULL) : NULL;
	const char *field = "", *reason = "";
	int rc = -1;
	if (dj && sj && seed && camp_parse(dj, &e->c, &field, &reason) == 0) {
		e->have_c = 1;
		if (segment_parse(sj, &e->seg, &field, &reason) == 0)
			rc = 0;
	}
	if (rc < 0)
		log_err("campaign", "camp=%s stored definition unusable field=%s reason=%s", e->id,
		        log_q(field), log_q(reason));
	snprintf(e->seed, sizeof e->seed, "%s", seed ? seed : "");
	json_decref(dj);
	json_decref(sj);
	return rc;
}

static void on_started(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	(void)rep;
	struct camp_entry *e = arg;
	e->starting = 0;
	runner_unref(e->r);
}

/* A recurring campaign ran through its audience: schedule the next run,
 * or complete it when the schedule has none left. */
static void rearm(struct camp_entry *e, const redisReply *h, int64_t now)
{
	struct camp_runner *r = e->r;
	const char *def = hash_get(h, "json");
	json_t *dj = def ? json_loads(def, 0, NULL) : NULL;
	struct campaign c;
	const char *field, *reason;
	int64_t next = 0;
	if (dj && camp_parse(dj, &c, &field, &reason) == 0) {
		next = camp_next_run(&c, now, (int)hash_get_i64(h, "runs", 0) + 1);
		camp_release(&c);
	}
	json_decref(dj);
	e->run_done = 0;
	e->starting = 1;
	r->refs++;
	struct argv a;
	argv_init(&a);
	argv_add(&a, e->id);
	argv_addll(&a, now);
	argv_add(&a, next ? "rearm" : "complete");
	argv_add(&a, "");
	argv_add(&a, "scheduler");
	if (next) {
		argv_add(&a, "start");
		argv_addll(&a, next);
	}
	store_eval(r->st, SCRIPT_CAMP_STATE, &a, on_started, e);
	argv_free(&a);
	log_info("campaign", "camp=%s run over next=%lld", e->id, (long long)next);
}

static void on_camp(struct redis *rd, redisReply *h, void *arg)
{
	(void)rd;
	struct camp_entry *e = arg;
	struct camp_runner *r = e->r;
	e->fetching = 0;
	if (r->closing || !h || h->type != REDIS_REPLY_ARRAY || h->elements == 0) {
		runner_unref(r);
		return;
	}
	const char *state = hash_get(h, "state");
	int64_t now = now_ms();
	if (state && strcmp(state, "scheduled") == 0 && !e->starting &&
	    hash_get_i64(h, "start", 0) <= now) {
		e->starting = 1;
		r->refs++;
		struct argv a;
		argv_init(&a);
		argv_add(&a, e->id);
		argv_addll(&a, now);
		argv_add(&a, "start");
		argv_add(&a, "");
		argv_add(&a, "scheduler");
		store_eval(r->st, SCRIPT_CAMP_STATE, &a, on_started, e);
		argv_free(&a);
		log_info("campaign", "camp=%s state=running (start time reached)", e->id);
	} else if (state && strcmp(state, "running") == 0 && e->run_done && !e->starting) {
		rearm(e, h, now);
	} else if (state && strcmp(state, "running") == 0) {
		if (!e->scanning && hash_get_i64(h, "fan_done", 0) != 1 &&
		    load_definition(e, h) == 0) {
			free(e->cursor);
			const char *cur = hash_get(h, "fan_cursor");
			e->cursor = xstrdup(cur ? cur : "");
			e->scanning = 1;
			r->refs++;
			store_camp_lease(r->st, e->id, r->owner, FAN_LEASE_MS, on_lease, e);
		}
		pump(e);
	}
	runner_unref(r);
}

static struct camp_entry *entry_get(struct camp_runner *r, const char *id)
{
	for (struct camp_entry *e = r->entries; e; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	struct camp_entry *e = xcalloc(1, sizeof *e);
	e->r = r;
	snprintf(e->id, sizeof e->id, "%s", id);
	e->next = r->entries;
	r->entries = e;
	return e;
}

static int entry_busy(const struct camp_entry *e)
{
	return e->fetching || e->scanning || e->pumping || e->starting || e->fans > 0;
}

static void on_active(struct redis *rd, redisReply *rep, void *arg)
{
	(void)rd;
	struct camp_runner *r = arg;
	r->listing = 0;
	if (r->closing || !rep || rep->type != REDIS_REPLY_ARRAY) {
		runner_unref(r);
		return;
	}
	for (struct camp_entry *e = r->entries; e; e = e->next)
		e->seen = 0;
	for (size_t i = 0; i < rep->elements; i++) {
		const char *id = reply_str(rep->element[i]);
		if (!id || strlen(id) >= 72)
			continue;
		struct camp_entry *e = entry_get(r, id);
		e->seen = 1;
		if (!e->fetching) {
			e->fetching = 1;
			r->refs++;
			store_camp_get(r->st, e->id, on_camp, e);
		}
	}
	/* Forget campaigns that left the active set (paused, ended). */
	struct camp_entry **pp = &r->entries;
	while (*pp) {
		struct camp_entry *e = *pp;
		if (!e->seen && !entry_busy(e)) {
			*pp = e->next;
			entry_free(e);
		} else {
			if (!e->seen && e->scanning && e->scan)
				scan_stop(e);
			pp = &e->next;
		}
	}
	runner_unref(r);
}

static void on_tick(uv_timer_t *t)
{
	struct camp_runner *r = t->data;
	if (r->closing || r->listing || !redis_is_up(r->st->r))
		return;
	r->listing = 1;
	r->refs++;
	store_camp_active(r->st, on_active, r);
}

struct camp_runner *camp_runner_new(uv_loop_t *loop, struct store *st, const struct config *cfg,
                                    const char *consumer)
{
	struct camp_runner *r = xcalloc(1, sizeof *r);
	r->loop = loop;
	r->st = st;
	r->cfg = cfg;
	r->refs = 1; /* the timer handle */
	snprintf(r->owner, sizeof r->owner, "%s", consumer);
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	return r;
}

void camp_runner_start(struct camp_runner *r)
{
	uv_timer_start(&r->timer, on_tick, 50, (uint64_t)r->cfg->camp_tick_ms);
}

void camp_runner_poke(struct camp_runner *r)
{
	if (r && !r->closing)
		on_tick(&r->timer);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct camp_runner *r = h->data;
	runner_unref(r);
}

void camp_runner_close(struct camp_runner *r, void (*cb)(void *arg), void *arg)
{
	r->closing = 1;
	r->close_cb = cb;
	r->close_arg = arg;
	for (struct camp_entry *e = r->entries; e; e = e->next)
		if (e->scan)
			scan_stop(e);
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

void camp_runner_free(struct camp_runner *r)
{
	while (r->entries) {
		struct camp_entry *e = r->entries;
		r->entries = e->next;
		entry_free(e);
	}
	free(r);
}
