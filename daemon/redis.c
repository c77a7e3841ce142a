/*
 * redis.c - one asynchronous Redis connection on the libuv loop.
 *
 * Owns: the hiredis async context, our libuv adapter for it (one uv_poll_t
 * per context, freed only in its close callback), the reconnect schedule
 * (clamped exponential backoff with +-20% jitter), the connect deadline, the
 * FIFO of command records with their deadlines, and the EVALSHA -> EVAL
 * fallback for scripts.
 *
 * Never touches: key names or data layout (store_*.c), process signals (the
 * caller must ignore SIGPIPE: hiredis writes with write(2)), other modules'
 * state.  No global state: several struct redis per process are fine.
 *
 * Invariants:
 *  - every command gets exactly one record; the record alone calls the user
 *    callback, once, then is freed.  Replies are delivered synchronously from
 *    hiredis (they are borrowed); every NULL ("not executed or unknown") is
 *    delivered later from an idle handle, so user code never runs inside
 *    redis_cmdv(), redisAsyncFree() or redis_close().
 *  - r->inflight mirrors hiredis's reply queue in order: a record enters it
 *    when hiredis accepted the command and leaves it in on_reply().
 *  - the context is never freed from inside our own poll callback (hiredis
 *    may still use it when onConnect returns); such drops are finished when
 *    the poll callback unwinds.
 *
 * Limits: RESP2 only (hiredis 0.14); no pub/sub; no bound on in-flight
 * commands here (callers bound their own batches); a deadline is checked
 * every tick (<= 100 ms), so it fires up to one tick late.
 */
#include "redis.h"

#include <assert.h>
#include <errno.h>
#include <hiredis/async.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define SUB                 "redis"
#define DEF_COMMAND_TIMEOUT 5000
#define DEF_CONNECT_TIMEOUT 5000
#define DEF_RECONNECT_MIN   100
#define DEF_RECONNECT_MAX   10000
#define STILL_DOWN_EVERY_MS 30000
#define TICK_MAX_MS         100
#define TICK_MIN_MS         10
#define FIXED_HANDLES       4 /* retry, connect, tick timers + flush idle */

enum rstate {
	RS_DOWN,       /* waiting for the retry timer */
	RS_CONNECTING, /* TCP / unix connect in progress */
	RS_HANDSHAKE,  /* AUTH / SELECT running */
	RS_UP,
	RS_CLOSING,
};

static const char *const state_names[] = {"down", "connecting", "handshake", "up", "closing"};

struct rcmd {
	struct rcmd *next;
	struct redis *r;
	redis_cb cb;
	void *arg;
	int64_t timeout_ms;
	int64_t deadline;
	int early; /* deadline earlier than one queued before it */
	int done;
	char name[16]; /* command name, for logs */
	/* scripts: the EVALSHA argv, reused as EVAL on NOSCRIPT */
	struct redis_script *script;
	int sargc;
	const char **sargv;
	size_t *sargvlen;
};

struct cmdq {
	struct rcmd *head, *tail;
	size_t n;
};

/* Our hiredis event adapter: one per redisAsyncContext. */
struct adapter {
	uv_poll_t poll;
	struct redis *r;
	redisAsyncContext *ac;
	int want;     /* UV_READABLE | UV_WRITABLE as hiredis asked */
	int dead;     /* cleanup ran: poll closing, ac being freed */
	int free_req; /* drop requested while hiredis was on the stack */
};

struct redis {
	uv_loop_t *loop;
	char *name, *host, *socket, *password;
	int port, db;
	int64_t command_timeout, connect_timeout, rmin, rmax, tick_ms;
	redis_state_cb state_cb;
	void *state_arg;

	enum rstate state;
	redisAsyncContext *ac;
	int in_io;    /* inside our poll callback (hiredis on the stack) */
	int in_flush; /* delivering deferred NULLs */

	struct cmdq inflight;
	size_t n_early;
	int64_t max_deadline;
	struct cmdq failed; /* waiting for a deferred cb(NULL) */

	uv_timer_t retry_timer, connect_timer, tick_timer;
	uv_idle_t flush_idle;

	unsigned attempt; /* failures since the last good connection */
	uint64_t reconnects;
	int ever_up;
	int down_logged;
	int64_t down_since, last_summary;
	uint64_t rng;

	int handles; /* open uv handles, ours and the adapters' */
	int finishing;
	void (*close_cb)(void *arg);
	void *close_arg;
};

static void start_connect(struct redis *r);
static void went_down(struct redis *r, const char *reason);
static void maybe_finish(struct redis *r);
static void flush_cb(uv_idle_t *h);
static void tick_cb(uv_timer_t *h);
static void ad_poll_cb(uv_poll_t *h, int status, int events);

/* ---- small helpers ---- */

static int64_t opt_or(int64_t v, int64_t def)
{
	return v > 0 ? v : def;
}

static void set_state(struct redis *r, enum rstate st)
{
	if (r->state == st)
		return;
	log_trace(SUB, "name=%s state=%s from=%s", log_q(r->name), state_names[st],
	          state_names[r->state]);
	r->state = st;
}

static uint64_t rng_next(struct redis *r)
{
	uint64_t x = r->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	r->rng = x;
	return x;
}

static void q_push(struct cmdq *q, struct rcmd *c)
{
	c->next = NULL;
	if (q->tail)
		q->tail->next = c;
	else
		q->head = c;
	q->tail = c;
	q->n++;
}

static struct rcmd *q_pop(struct cmdq *q)
{
	struct rcmd *c = q->head;
	if (!c)
		return NULL;
	q->head = c->next;
	if (!q->head)
		q->tail = NULL;
	q->n--;
	c->next = NULL;
	return c;
}

static void rcmd_free(struct rcmd *c)
{
	free(c->sargv);
	free(c);
}

static struct rcmd *rcmd_new(struct redis *r, redis_cb cb, void *arg, int64_t timeout_ms,
                             const char *name, size_t namelen)
{
	struct rcmd *c = xcalloc(1, sizeof(*c));
	c->r = r;
	c->cb = cb;
	c->arg = arg;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : r->command_timeout;
	if (name) {
		if (namelen >= sizeof(c->name))
			namelen = sizeof(c->name) - 1;
		memcpy(c->name, name, namelen);
		c->name[namelen] = '\0';
	}
	return c;
}

/* Deliver a real reply (borrowed from hiredis) and free the record. */
static void deliver(struct redis *r, struct rcmd *c, redisReply *reply)
{
	assert(!c->done);
	c->done = 1;
	if (c->cb)
		c->cb(r, reply, c->arg);
	rcmd_free(c);
}

/* Queue a record for a deferred cb(NULL). */
static void fail_later(struct redis *r, struct rcmd *c)
{
	assert(!c->done);
	assert(!r->finishing); /* no commands once redis_close() has finished */
	q_push(&r->failed, c);
	if (!uv_is_active((uv_handle_t *)&r->flush_idle))
		uv_idle_start(&r->flush_idle, flush_cb);
}

static void flush_cb(uv_idle_t *h)
{
	struct redis *r = container_of(h, struct redis, flush_idle);
	/* A snapshot: failures queued by these callbacks wait for the next
	 * loop iteration, so an immediate retry cannot starve the loop. */
	struct cmdq batch = r->failed;
	memset(&r->failed, 0, sizeof(r->failed));
	struct rcmd *c;
	r->in_flush = 1;
	while ((c = q_pop(&batch)) != NULL) {
		assert(!c->done);
		c->done = 1;
		if (c->cb)
			c->cb(r, NULL, c->arg);
		rcmd_free(c);
	}
	r->in_flush = 0;
	if (r->failed.n == 0)
		uv_idle_stop(&r->flush_idle);
	maybe_finish(r);
}

/* ---- the adapter ---- */

static void ad_start(struct adapter *ad)
{
	if (ad->dead)
		return;
	if (ad->want)
		uv_poll_start(&ad->poll, ad->want, ad_poll_cb);
	else
		uv_poll_stop(&ad->poll);
}

static void ad_poll_cb(uv_poll_t *h, int status, int events)
{
	struct adapter *ad = container_of(h, struct adapter, poll);
	struct redis *r = ad->r;
	redisAsyncContext *ac = ad->ac;

	if (status < 0) {
		/* libuv stopped the poll on POLLERR: hand the readiness we were
		 * waiting for to hiredis, whose syscall then reports the error
		 * (refused connect, reset). */
		log_debug(SUB, "name=%s event=poll_error err=%s", log_q(r->name),
		          uv_err_name(status));
		events = ad->want;
	}
	r->in_io++;
	if (!ad->dead && !ad->free_req && (events & UV_WRITABLE))
		redisAsyncHandleWrite(ac);
	if (!ad->dead && !ad->free_req && (events & UV_READABLE))
		redisAsyncHandleRead(ac);
	r->in_io--;
	if (!ad->dead && ad->free_req) {
		redisAsyncFree(ac); /* runs the cleanup hook: ad->dead */
		return;
	}
	if (!ad->dead && status < 0)
		ad_start(ad); /* nothing failed after all: re-arm */
}

static void ad_add_read(void *p)
{
	struct adapter *ad = p;
	ad->want |= UV_READABLE;
	ad_start(ad);
}

static void ad_del_read(void *p)
{
	struct adapter *ad = p;
	ad->want &= ~UV_READABLE;
	ad_start(ad);
}

static void ad_add_write(void *p)
{
	struct adapter *ad = p;
	ad->want |= UV_WRITABLE;
	ad_start(ad);
}

static void ad_del_write(void *p)
{
	struct adapter *ad = p;
	ad->want &= ~UV_WRITABLE;
	ad_start(ad);
}

static void ad_closed(uv_handle_t *h)
{
	struct adapter *ad = container_of((uv_poll_t *)h, struct adapter, poll);
	struct redis *r = ad->r;
	free(ad);
	r->handles--;
	maybe_finish(r);
}

/* hiredis calls this once or twice per context (0.14 does not clear the
 * hook); the memory stays valid until ad_closed. */
static void ad_cleanup(void *p)
{
	struct adapter *ad = p;
	if (ad->dead)
		return;
	ad->dead = 1;
	ad->want = 0;
	ad->ac = NULL;
	uv_poll_stop(&ad->poll);
	uv_close((uv_handle_t *)&ad->poll, ad_closed);
}

static int ad_attach(struct redis *r, redisAsyncContext *ac)
{
	struct adapter *ad = xcalloc(1, sizeof(*ad));
	int rc = uv_poll_init(r->loop, &ad->poll, ac->c.fd);
	if (rc < 0) {
		free(ad);
		return rc;
	}
	r->handles++;
	ad->r = r;
	ad->ac = ac;
	ac->ev.data = ad;
	ac->ev.addRead = ad_add_read;
	ac->ev.delRead = ad_del_read;
	ac->ev.addWrite = ad_add_write;
	ac->ev.delWrite = ad_del_write;
	ac->ev.cleanup = ad_cleanup;
	return 0;
}

/* ---- the command FIFO and deadlines ---- */

static void inflight_push(struct redis *r, struct rcmd *c)
{
	if (r->inflight.n == 0)
		r->max_deadline = INT64_MIN;
	if (c->deadline < r->max_deadline) {
		c->early = 1;
		r->n_early++;
	} else {
		c->early = 0;
		r->max_deadline = c->deadline;
	}
	q_push(&r->inflight, c);
	if (!uv_is_active((uv_handle_t *)&r->tick_timer))
		uv_timer_start(&r->tick_timer, tick_cb, (uint64_t)r->tick_ms, (uint64_t)r->tick_ms);
}

/* Hand the command to hiredis; on refusal the record fails (deferred). */
static void issue(struct redis *r, struct rcmd *c, int argc, const char **argv,
                  const size_t *argvlen);

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct rcmd *c = priv;
	struct redis *r = c->r;
	(void)ac;
	/* hiredis answers in order: the record is the head of our FIFO. */
	assert(r->inflight.head == c);
	q_pop(&r->inflight);
	if (c->early)
		r->n_early--;
	if (r->inflight.n == 0 && uv_is_active((uv_handle_t *)&r->tick_timer))
		uv_timer_stop(&r->tick_timer);
	if (!reply) {
		fail_later(r, c);
		return;
	}
	if (c->script && redis_reply_is_error(reply, "NOSCRIPT")) {
		log_debug(SUB, "name=%s event=noscript script=%s", log_q(r->name),
		          log_q(c->script->name ? c->script->name : "?"));
		c->sargv[0] = "EVAL";
		c->sargvlen[0] = 4;
		c->sargv[1] = c->script->body;
		c->sargvlen[1] = strlen(c->script->body);
		c->script = NULL;
		memcpy(c->name, "EVAL", 5);
		issue(r, c, c->sargc, c->sargv, c->sargvlen);
		return;
	}
	deliver(r, c, reply);
}

static void issue(struct redis *r, struct rcmd *c, int argc, const char **argv,
                  const size_t *argvlen)
{
	if (!r->ac || (r->state != RS_UP && r->state != RS_HANDSHAKE)) {
		fail_later(r, c);
		return;
	}
	c->deadline = (int64_t)uv_now(r->loop) + c->timeout_ms;
	if (redisAsyncCommandArgv(r->ac, on_reply, c, argc, argv, argvlen) != REDIS_OK) {
		fail_later(r, c);
		return;
	}
	inflight_push(r, c);
}

/*
 * Stop using the current context.  Its pending records get NULL through
 * hiredis (at once, or when our poll callback unwinds).  The state change
 * and the reconnect are went_down's business, not ours, unless asked.
 */
static void conn_detach(struct redis *r)
{
	redisAsyncContext *ac = r->ac;
	if (!ac)
		return;
	r->ac = NULL;
	ac->data = NULL;
	struct adapter *ad = ac->ev.data;
	if (r->in_io && ad)
		ad->free_req = 1;
	else
		redisAsyncFree(ac);
}

static void conn_drop(struct redis *r, const char *reason)
{
	if (!r->ac)
		return;
	conn_detach(r);
	went_down(r, reason);
}

static void tick_cb(uv_timer_t *h)
{
	struct redis *r = container_of(h, struct redis, tick_timer);
	if (r->inflight.n == 0) {
		uv_timer_stop(h);
		return;
	}
	int64_t now = (int64_t)uv_now(r->loop);
	struct rcmd *late = NULL;
	if (r->n_early == 0) {
		/* Deadlines are non-decreasing along the FIFO. */
		if (r->inflight.head->deadline <= now)
			late = r->inflight.head;
	} else {
		for (struct rcmd *c = r->inflight.head; c; c = c->next)
			if (c->deadline <= now && (!late || c->deadline < late->deadline))
				late = c;
	}
	if (!late)
		return;
	log_warnx(SUB, "name=%s event=deadline cmd=%s timeout_ms=%lld late_ms=%lld pending=%zu",
	          log_q(r->name), log_q(late->name), (long long)late->timeout_ms,
	          (long long)(now - late->deadline), r->inflight.n);
	conn_drop(r, "command deadline passed");
}

/* ---- connection life cycle ---- */

static int64_t backoff_ms(struct redis *r)
{
	int64_t base = r->rmin;
	for (unsigned i = 0; i < r->attempt && base < r->rmax; i++)
		base *= 2;
	if (base > r->rmax)
		base = r->rmax;
	/* +-20% jitter around the clamped value */
	int64_t pct = 80 + (int64_t)(rng_next(r) % 41);
	int64_t d = base * pct / 100;
	return d > 0 ? d : 1;
}

static void retry_cb(uv_timer_t *h)
{
	struct redis *r = container_of(h, struct redis, retry_timer);
	if (r->state == RS_DOWN)
		start_connect(r);
}

static void went_down(struct redis *r, const char *reason)
{
	enum rstate prev = r->state;
	uv_timer_stop(&r->connect_timer);
	if (prev == RS_CLOSING) {
		maybe_finish(r);
		return;
	}
	set_state(r, RS_DOWN);
	int64_t now = (int64_t)uv_now(r->loop);
	if (prev == RS_UP) {
		log_warnx(SUB, "name=%s event=down reason=%s pending=%zu", log_q(r->name),
		          log_q(reason), r->inflight.n + r->failed.n);
		r->down_logged = 1;
		r->down_since = r->last_summary = now;
		if (r->state_cb)
			r->state_cb(r, 0, r->state_arg);
		if (r->state != RS_DOWN) /* closed from the callback */
			return;
	} else if (!r->down_logged) {
		log_warnx(SUB, "name=%s event=connect_failed reason=%s", log_q(r->name),
		          log_q(reason));
		r->down_logged = 1;
		r->down_since = r->last_summary = now;
	} else {
		log_debug(SUB, "name=%s event=connect_failed attempt=%u reason=%s", log_q(r->name),
		          r->attempt + 1, log_q(reason));
		if (now - r->last_summary >= STILL_DOWN_EVERY_MS) {
			log_warnx(SUB,
			          "name=%s event=still_down down_ms=%lld attempts=%u reason=%s",
			          log_q(r->name), (long long)(now - r->down_since), r->attempt + 1,
			          log_q(reason));
			r->last_summary = now;
		}
	}
	int64_t d = backoff_ms(r);
	if (prev != RS_UP)
		r->attempt++;
	uv_timer_start(&r->retry_timer, retry_cb, (uint64_t)d, 0);
}

static void became_up(struct redis *r)
{
	uv_timer_stop(&r->connect_timer);
	set_state(r, RS_UP);
	if (r->ever_up)
		r->reconnects++;
	if (r->down_logged)
		log_notice(SUB, "name=%s event=up down_ms=%lld attempts=%u reconnects=%llu",
		           log_q(r->name), (long long)((int64_t)uv_now(r->loop) - r->down_since),
		           r->attempt, (unsigned long long)r->reconnects);
	else
		log_info(SUB, "name=%s event=up", log_q(r->name));
	r->ever_up = 1;
	r->down_logged = 0;
	r->attempt = 0;
	if (r->state_cb)
		r->state_cb(r, 1, r->state_arg);
}

static void handshake_next(struct redis *r, int step);

static void hs_reply(struct redis *r, redisReply *reply, void *arg)
{
	int step = (int)(intptr_t)arg;
	if (!reply)
		return; /* the connection went away; went_down handled it */
	if (r->state != RS_HANDSHAKE)
		return;
	if (reply->type == REDIS_REPLY_ERROR) {
		/* Server error text, never the password; once per outage. */
		log_emit(r->down_logged ? LOG_DEBUG : LOG_ERR, SUB,
		         "name=%s event=handshake_failed step=%s err=%s", log_q(r->name),
		         step == 0 ? "auth" : "select", log_q(reply->str ? reply->str : ""));
		conn_drop(r, step == 0 ? "AUTH failed" : "SELECT failed");
		return;
	}
	handshake_next(r, step + 1);
}

/* step 0: AUTH, step 1: SELECT, then up. */
static void handshake_next(struct redis *r, int step)
{
	if (step == 0 && r->password) {
		const char *argv[2] = {"AUTH", r->password};
		struct rcmd *c =
		    rcmd_new(r, hs_reply, (void *)(intptr_t)0, r->connect_timeout, "AUTH", 4);
		issue(r, c, 2, argv, NULL);
		return;
	}
	if (step <= 1 && r->db) {
		char db[24];
		snprintf(db, sizeof(db), "%d", r->db);
		const char *argv[2] = {"SELECT", db};
		struct rcmd *c =
		    rcmd_new(r, hs_reply, (void *)(intptr_t)1, r->connect_timeout, "SELECT", 6);
		issue(r, c, 2, argv, NULL);
		return;
	}
	became_up(r);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct redis *r = ac->data;
	if (!r || r->ac != ac)
		return; /* detached: we already dealt with it */
	if (status != REDIS_OK) {
		char reason[128];
		snprintf(reason, sizeof(reason), "%s", ac->errstr ? ac->errstr : "connect failed");
		r->ac = NULL; /* hiredis frees it when we return */
		went_down(r, reason);
		return;
	}
	set_state(r, RS_HANDSHAKE);
	handshake_next(r, 0);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct redis *r = ac->data;
	if (!r || r->ac != ac)
		return;
	char reason[128];
	snprintf(reason, sizeof(reason), "%s",
	         status == REDIS_OK ? "closed" : (ac->errstr ? ac->errstr : "error"));
	r->ac = NULL; /* hiredis frees it when we return */
	went_down(r, reason);
}

static void connect_timeout_cb(uv_timer_t *h)
{
	struct redis *r = container_of(h, struct redis, connect_timer);
	if (r->state == RS_CONNECTING || r->state == RS_HANDSHAKE)
		conn_drop(r, "connect timeout");
}

static void start_connect(struct redis *r)
{
	char reason[128];
	set_state(r, RS_CONNECTING);
	redisAsyncContext *ac =
	    r->socket ? redisAsyncConnectUnix(r->socket) : redisAsyncConnect(r->host, r->port);
	if (!ac) {
		went_down(r, "out of memory");
		return;
	}
	if (ac->err) {
		snprintf(reason, sizeof(reason), "%s", ac->errstr ? ac->errstr : "connect failed");
		redisAsyncFree(ac);
		went_down(r, reason);
		return;
	}
	int rc = ad_attach(r, ac);
	if (rc < 0) {
		snprintf(reason, sizeof(reason), "uv_poll_init: %s", uv_strerror(rc));
		redisAsyncFree(ac);
		went_down(r, reason);
		return;
	}
	ac->data = r;
	r->ac = ac;
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	/* Arms the first write event, which reports the connect. */
	redisAsyncSetConnectCallback(ac, on_connect);
	uv_timer_start(&r->connect_timer, connect_timeout_cb, (uint64_t)r->connect_timeout, 0);
}

/* ---- public API ---- */

struct redis *redis_new(uv_loop_t *loop, const struct redis_opts *o, redis_state_cb state_cb,
                        void *arg)
{
	struct redis *r = xcalloc(1, sizeof(*r));
	r->loop = loop;
	r->name = xstrdup(o->name ? o->name : "redis");
	r->host = xstrdup(o->host && *o->host ? o->host : "127.0.0.1");
	r->socket = o->socket && *o->socket ? xstrdup(o->socket) : NULL;
	r->password = o->password && *o->password ? xstrdup(o->password) : NULL;
	r->port = o->port > 0 ? o->port : 6379;
	r->db = o->db;
	r->command_timeout = opt_or(o->command_timeout_ms, DEF_COMMAND_TIMEOUT);
	r->connect_timeout = opt_or(o->connect_timeout_ms, DEF_CONNECT_TIMEOUT);
	r->rmin = opt_or(o->reconnect_min_ms, DEF_RECONNECT_MIN);
	r->rmax = opt_or(o->reconnect_max_ms, DEF_RECONNECT_MAX);
	if (r->rmax < r->rmin)
		r->rmax = r->rmin;
	int64_t t =
	    r->command_timeout < r->connect_timeout ? r->command_timeout : r->connect_timeout;
	t /= 4;
	r->tick_ms = t > TICK_MAX_MS ? TICK_MAX_MS : t < TICK_MIN_MS ? TICK_MIN_MS : t;
	r->state_cb = state_cb;
	r->state_arg = arg;
	r->state = RS_DOWN;
	random_bytes(&r->rng, sizeof(r->rng));
	r->rng |= 1;

	uv_timer_init(loop, &r->retry_timer);
	uv_timer_init(loop, &r->connect_timer);
	uv_timer_init(loop, &r->tick_timer);
	uv_idle_init(loop, &r->flush_idle);
	r->handles = FIXED_HANDLES;

	start_connect(r);
	return r;
}

int redis_is_up(const struct redis *r)
{
	return r->state == RS_UP;
}

const char *redis_name(const struct redis *r)
{
	return r->name;
}

uint64_t redis_reconnects(const struct redis *r)
{
	return r->reconnects;
}

size_t redis_pending(const struct redis *r)
{
	return r->inflight.n + r->failed.n;
}

int redis_cmdv(struct redis *r, int64_t timeout_ms, redis_cb cb, void *arg, int argc,
               const char **argv, const size_t *argvlen)
{
	const char *name = argc > 0 && argv && argv[0] ? argv[0] : NULL;
	size_t namelen = name ? (argvlen ? argvlen[0] : strlen(name)) : 0;
	struct rcmd *c = rcmd_new(r, cb, arg, timeout_ms, name, namelen);
	if (argc <= 0 || !argv || r->state != RS_UP) {
		fail_later(r, c);
		return 0;
	}
	issue(r, c, argc, argv, argvlen);
	return 0;
}

int redis_cmdf(struct redis *r, redis_cb cb, void *arg, const char *fmt, ...)
{
	size_t namelen = strcspn(fmt, " ");
	struct rcmd *c = rcmd_new(r, cb, arg, 0, fmt, namelen);
	if (r->state != RS_UP || !r->ac) {
		fail_later(r, c);
		return 0;
	}
	char *cmd = NULL;
	va_list ap;
	va_start(ap, fmt);
	int len = redisvFormatCommand(&cmd, fmt, ap);
	va_end(ap);
	if (len < 0) {
		log_err(SUB, "name=%s event=bad_format cmd=%s", log_q(r->name), log_q(c->name));
		fail_later(r, c);
		return 0;
	}
	c->deadline = (int64_t)uv_now(r->loop) + c->timeout_ms;
	if (redisAsyncFormattedCommand(r->ac, on_reply, c, cmd, (size_t)len) != REDIS_OK)
		fail_later(r, c);
	else
		inflight_push(r, c);
	redisFreeCommand(cmd);
	return 0;
}

static void script_sha(struct redis_script *s)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (EVP_Digest(s->body, strlen(s->body), md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen != 20) {
		log_err(SUB, "event=sha1_failed script=%s", log_q(s->name ? s->name : "?"));
		abort();
	}
	hex_encode(md, 20, s->sha);
}

int redis_script(struct redis *r, struct redis_script *s, redis_cb cb, void *arg, int nkeys,
                 int argc, const char **argv, const size_t *argvlen)
{
	struct rcmd *c = rcmd_new(r, cb, arg, 0, "EVALSHA", 7);
	if (!s || !s->body || nkeys < 0 || argc < 0 || nkeys > argc || (argc > 0 && !argv)) {
		log_err(SUB, "name=%s event=bad_script_call nkeys=%d argc=%d", log_q(r->name),
		        nkeys, argc);
		fail_later(r, c);
		return 0;
	}
	if (r->state != RS_UP) {
		fail_later(r, c);
		return 0;
	}
	if (s->sha[0] == '\0')
		script_sha(s);

	/* One block: argv pointers, lengths, the nkeys text, the arguments. */
	int n = argc + 3;
	size_t data = 0;
	for (int i = 0; i < argc; i++)
		data += argvlen ? argvlen[i] : strlen(argv[i]);
	size_t sz = (size_t)n * (sizeof(char *) + sizeof(size_t)) + 24 + data;
	char *blk = xmalloc(sz);
	c->sargv = (const char **)(void *)blk;
	c->sargvlen = (size_t *)(void *)(blk + (size_t)n * sizeof(char *));
	char *p = blk + (size_t)n * (sizeof(char *) + sizeof(size_t));
	c->sargc = n;
	c->script = s;
	c->sargv[0] = "EVALSHA";
	c->sargvlen[0] = 7;
	c->sargv[1] = s->sha;
	c->sargvlen[1] = 40;
	int k = snprintf(p, 24, "%d", nkeys);
	c->sargv[2] = p;
	c->sargvlen[2] = (size_t)k;
	p += 24;
	for (int i = 0; i < argc; i++) {
		size_t l = argvlen ? argvlen[i] : strlen(argv[i]);
		if (l)
			memcpy(p, argv[i], l);
		c->sargv[3 + i] = p;
		c->sargvlen[3 + i] = l;
		p += l;
	}
	issue(r, c, c->sargc, c->sargv, c->sargvlen);
	return 0;
}

static void handle_closed(uv_handle_t *h)
{
	struct redis *r = h->data;
	r->handles--;
	maybe_finish(r);
}

static void maybe_finish(struct redis *r)
{
	if (r->state != RS_CLOSING)
		return;
	if (!r->finishing) {
		if (r->inflight.n || r->failed.n || r->ac || r->in_flush)
			return; /* the flush (or the unwinding poll callback) comes back */
		r->finishing = 1;
		uv_handle_t *hs[] = {(uv_handle_t *)&r->retry_timer,
		                     (uv_handle_t *)&r->connect_timer,
		                     (uv_handle_t *)&r->tick_timer, (uv_handle_t *)&r->flush_idle};
		for (size_t i = 0; i < ARRAY_SIZE(hs); i++) {
			hs[i]->data = r;
			uv_close(hs[i], handle_closed);
		}
		return;
	}
	if (r->handles > 0)
		return;
	void (*cb)(void *) = r->close_cb;
	void *arg = r->close_arg;
	log_debug(SUB, "name=%s event=closed", log_q(r->name));
	if (cb)
		cb(arg);
	free(r->name);
	free(r->host);
	free(r->socket);
	if (r->password) {
		explicit_bzero(r->password, strlen(r->password));
		free(r->password);
	}
	free(r);
}

void redis_close(struct redis *r, void (*cb)(void *arg), void *arg)
{
	assert(r->state != RS_CLOSING);
	r->close_cb = cb;
	r->close_arg = arg;
	log_debug(SUB, "name=%s event=closing state=%s pending=%zu", log_q(r->name),
	          state_names[r->state], r->inflight.n + r->failed.n);
	set_state(r, RS_CLOSING);
	uv_timer_stop(&r->retry_timer);
	uv_timer_stop(&r->connect_timer);
	/* Pending records come back through on_reply -> fail_later -> flush,
	 * at once or when a poll callback on the stack unwinds. */
	conn_detach(r);
	maybe_finish(r);
}

int redis_reply_is_error(const redisReply *rep, const char *pfx)
{
	if (!rep || rep->type != REDIS_REPLY_ERROR)
		return 0;
	if (!pfx || !*pfx)
		return 1;
	size_t n = strlen(pfx);
	return rep->str && (size_t)rep->len >= n && memcmp(rep->str, pfx, n) == 0;
}
