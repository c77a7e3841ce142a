/*
 * sched.c - the due-set pump and the retry policy.
 *
 * A timer fires every [sched] tick and runs lua/msg_promote.lua for up to
 * [sched] batch due messages; when a batch comes back full the next one
 * runs at once, so a backlog drains at Redis speed rather than one batch
 * per tick.  Only one promote call is in flight at a time.  If Redis does
 * not answer, the next tick simply tries again: the script is atomic, so a
 * lost reply loses nothing.  Owns its timer; never touches message state
 * except through the script.
 */
#include "sched.h"

#include <stdlib.h>

#include "log.h"
#include "util.h"

struct sched {
	uv_loop_t *loop;
	struct store *st;
	const struct config *cfg;
	uv_timer_t timer;
	int running;
	int busy; /* a promote call is in flight */
	int closing;
	uint64_t moved, expired;
	void (*closed_cb)(void *);
	void *closed_arg;
};

int64_t sched_backoff_ms(int attempt, int64_t min_ms, int64_t max_ms, uint32_t rnd)
{
	if (attempt < 1)
		attempt = 1;
	if (min_ms < 1)
		min_ms = 1;
	if (max_ms < min_ms)
		max_ms = min_ms;
	int64_t d = min_ms;
	for (int i = 1; i < attempt && d < max_ms; i++)
		d = d > max_ms / 2 ? max_ms : d * 2;
	if (d > max_ms)
		d = max_ms;
	int64_t half = d / 2;
	int64_t jitter = half > 0 ? (int64_t)(rnd % (uint64_t)(half + 1)) : 0;
	int64_t r = d - half + jitter;
	return r < min_ms ? min_ms : r;
}

enum sched_verdict sched_after_tempfail(int attempts, int max_attempts, int64_t now_ms,
                                        int64_t expires_ms, int64_t backoff_ms,
                                        int64_t retry_after_ms, int64_t *due_ms)
{
	if (attempts >= max_attempts)
		return SCHED_GIVE_UP;
	int64_t delay = backoff_ms > retry_after_ms ? backoff_ms : retry_after_ms;
	int64_t due = now_ms + delay;
	if (expires_ms > 0 && due > expires_ms)
		return SCHED_EXPIRE;
	*due_ms = due;
	return SCHED_RETRY;
}

static void on_timer(uv_timer_t *t);
static void on_closed(uv_handle_t *h);

static void on_promoted(struct redis *r, redisReply *rep, void *arg)
{
	(void)r;
	struct sched *s = arg;
	s->busy = 0;
	if (s->closing) {
		uv_close((uv_handle_t *)&s->timer, on_closed);
		return;
	}
	uint64_t next = (uint64_t)s->cfg->sched_tick_ms;
	if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 3) {
		long long examined = rep->element[0]->integer;
		s->moved += (uint64_t)rep->element[1]->integer;
		s->expired += (uint64_t)rep->element[2]->integer;
		if (rep->element[1]->integer || rep->element[2]->integer)
			log_trace("sched", "moved=%lld expired=%lld", rep->element[1]->integer,
			          rep->element[2]->integer);
		if (examined >= s->cfg->sched_batch)
			next = 0; /* backlog: go again at once */
	} else if (rep && rep->type == REDIS_REPLY_ERROR) {
		log_err("sched", "promote failed error=%s", log_q(rep->str));
	}
	if (s->running)
		uv_timer_start(&s->timer, on_timer, next, 0);
}

static void on_timer(uv_timer_t *t)
{
	struct sched *s = container_of(t, struct sched, timer);
	if (!s->running || s->busy)
		return;
	if (!redis_is_up(s->st->r)) {
		uv_timer_start(&s->timer, on_timer, (uint64_t)s->cfg->sched_tick_ms, 0);
		return;
	}
	s->busy = 1;
	struct argv a;
	argv_init(&a);
	argv_addll(&a, now_ms());
	argv_addll(&a, s->cfg->sched_batch);
	argv_addll(&a, (s->cfg->sched_retention_ms + 999) / 1000);
	store_eval(s->st, SCRIPT_MSG_PROMOTE, &a, on_promoted, s);
	argv_free(&a);
}

struct sched *sched_new(uv_loop_t *loop, struct store *st, const struct config *cfg)
{
	struct sched *s = xcalloc(1, sizeof *s);
	s->loop = loop;
	s->st = st;
	s->cfg = cfg;
	uv_timer_init(loop, &s->timer);
	return s;
}

void sched_start(struct sched *s)
{
	s->running = 1;
	uv_timer_start(&s->timer, on_timer, 0, 0);
}

void sched_stop(struct sched *s)
{
	s->running = 0;
	uv_timer_stop(&s->timer);
}

void sched_reconfigure(struct sched *s, const struct config *cfg)
{
	s->cfg = cfg;
}

uint64_t sched_moved(const struct sched *s)
{
	return s->moved;
}

static void on_closed(uv_handle_t *h)
{
	struct sched *s = container_of((uv_timer_t *)h, struct sched, timer);
	void (*cb)(void *) = s->closed_cb;
	void *arg = s->closed_arg;
	free(s);
	if (cb)
		cb(arg);
}

void sched_close(struct sched *s, void (*cb)(void *arg), void *arg)
{
	/* An in-flight promote still points at s: the redis module answers
	 * every command (with NULL at the latest when it closes), so when one
	 * is in flight the close finishes in on_promoted(). */
	s->running = 0;
	s->closing = 1;
	s->closed_cb = cb;
	s->closed_arg = arg;
	uv_timer_stop(&s->timer);
	if (!s->busy)
		uv_close((uv_handle_t *)&s->timer, on_closed);
}
