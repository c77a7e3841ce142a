/*
 * test_channels.c - the channel layer on a real libuv loop: the token
 * bucket (fake clock), max_inflight, reports never synchronous, ordered
 * stop, the adaptive window and the circuit breaker (a scripted driver
 * registered only here: window opening and halving, the circuit opening
 * after N TEMPFAILs, one probe per half-open, backoff, retry-after,
 * reconfigure, the wake hook), the registry and config errors, the outbox
 * driver (JSONL and a Maildir message parsed back in C and by Python's
 * email package), the
 * webhook driver against tests/fakes/webhook_sink.py (which verifies the
 * HMAC), and the shared HTTP client's cancel-on-close.  Every test ends
 * with uv_loop_close() == 0.  No assertion depends on elapsed time.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "channel.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "testlib.h"
#include "util.h"

static char tmpdir[256];
static char secret_path[320];
static pid_t sink_pid = -1;
static int sink_port;

/* ---- small helpers ----------------------------------------------------- */

static char *read_text(const char *path, size_t *len)
{
	char *s = tl_read_file(path, len);
	assert_non_null(s);
	return s;
}

static struct config *load_cfg(const char *name, const char *text, struct cfg_error *err)
{
	return tl_load_config(tmpdir, name, text, err);
}

/* A message with a subject and html; the rest as tl_send_init makes it. */
static void mk_msg(struct tl_send *s, int *counter, const char *channel, const char *to,
                   const char *subject, const char *text, const char *html)
{
	tl_send_init(s, counter, channel, to, text);
	s->m.subject = subject;
	s->m.html = html;
}

/* ---- a fake driver for the wrapper's own logic ------------------------- */

enum fake_mode { FAKE_HOLD, FAKE_SYNC, FAKE_ERR, FAKE_ASYNC };

/* A hand-made [channel.X] section for channels built without a file. */
struct tsec {
	struct cfg_section s;
	struct cfg_kv kv[4];
	char key[4][32];
	char val[4][32];
};

static struct cfg_section *tsec_one(struct tsec *t, const char *key, int value)
{
	memset(t, 0, sizeof *t);
	snprintf(t->key[0], sizeof t->key[0], "%s", key);
	snprintf(t->val[0], sizeof t->val[0], "%d", value);
	t->kv[0].key = t->key[0];
	t->kv[0].value = t->val[0];
	t->kv[0].line = 1;
	t->s.name = t->key[1];
	snprintf(t->key[1], sizeof t->key[1], "channel.sms");
	t->s.kv = t->kv;
	t->s.nkv = 1;
	return &t->s;
}

struct fake {
	struct tsec sec; /* window_initial = max_inflight: no slow start here */
	enum fake_mode mode;
	int sends;
	const struct chan_msg *seen[64];
	chan_done_cb done[64];
	void *arg[64];
	int held[64];
	int nheld;
	uv_timer_t t;
	int stopping;
	void (*stopped)(struct chan *c);
	struct chan *c;
};

static int fake_start(struct chan *c, uv_loop_t *loop)
{
	struct fake *f = c->priv;
	f->c = c;
	uv_timer_init(loop, &f->t);
	f->t.data = f;
	return 0;
}

static void fake_closed(uv_handle_t *h)
{
	struct fake *f = h->data;
	f->stopped(f->c);
}

static void fake_complete(struct fake *f, int i)
{
	assert_true(f->held[i]);
	f->held[i] = 0;
	f->nheld--;
	struct chan_result r;
	memset(&r, 0, sizeof r);
	r.status = CHAN_OK;
	snprintf(r.provider_id, sizeof r.provider_id, "fake-%d", i);
	f->done[i](f->arg[i], &r);
	if (f->stopping && f->nheld == 0)
		uv_close((uv_handle_t *)&f->t, fake_closed);
}

static void fake_timer(uv_timer_t *t)
{
	struct fake *f = t->data;
	for (int i = 0; i < f->sends; i++)
		if (f->held[i])
			fake_complete(f, i);
}

static int fake_send(struct chan *c, const struct chan_msg *m, chan_done_cb done, void *arg)
{
	struct fake *f = c->priv;
	assert_true(f->sends < 64);
	int i = f->sends++;
	f->seen[i] = m;
	f->done[i] = done;
	f->arg[i] = arg;
	switch (f->mode) {
	case FAKE_ERR:
		return -EIO;
	case FAKE_SYNC: {
		/* misbehaving on purpose: the wrapper must defer this */
		struct chan_result r;
		memset(&r, 0, sizeof r);
		r.status = CHAN_OK;
		done(arg, &r);
		return 0;
	}
	case FAKE_ASYNC:
		uv_timer_start(&f->t, fake_timer, 1, 0);
		/* fall through */
	case FAKE_HOLD:
		f->held[i] = 1;
		f->nheld++;
		return 0;
	}
	return 0;
}

static void fake_stop(struct chan *c, void (*stopped)(struct chan *c))
{
	struct fake *f = c->priv;
	f->stopping = 1;
	f->stopped = stopped;
	if (f->nheld == 0)
		uv_close((uv_handle_t *)&f->t, fake_closed);
}

static const struct chan_driver fake_driver = {
    .name = "fake",
    .start = fake_start,
    .send = fake_send,
    .stop = fake_stop,
};

static struct chan *fake_chan(uv_loop_t *loop, struct fake *f, struct cfg_channel *cc,
                              int max_inflight, double rate, int burst)
{
	memset(cc, 0, sizeof *cc);
	cc->name = "sms";
	cc->driver = "fake";
	cc->max_inflight = max_inflight;
	cc->rate = rate;
	cc->burst = burst;
	cc->timeout_ms = 1000;
	cc->sec = tsec_one(&f->sec, "window_initial", max_inflight);
	struct chan *c = xcalloc(1, sizeof *c);
	c->drv = &fake_driver;
	c->cfg = cc;
	c->priv = f;
	assert_int_equal(chan_start_all(c, 1, loop), 0);
	return c;
}

/* ---- token bucket ------------------------------------------------------ */

static void test_bucket_math(void **state)
{
	(void)state;
	double tokens = 3;
	int64_t at = 0;
	/* the burst goes at once, then one token per 100 ms */
	for (int i = 0; i < 3; i++)
		assert_int_equal(chan_bucket_take(&tokens, &at, 0, 10, 3), 0);
	assert_int_equal(chan_bucket_take(&tokens, &at, 0, 10, 3), 100);
	assert_int_equal(chan_bucket_take(&tokens, &at, 40, 10, 3), 60);
	assert_int_equal(chan_bucket_take(&tokens, &at, 100, 10, 3), 0);

	/* 10 s of a fake clock, taking whenever allowed: burst + rate * 10 */
	tokens = 3;
	at = 0;
	int taken = 0;
	int64_t last = -1, min_gap = INT64_MAX;
	for (int64_t now = 0; now < 10000; now++) {
		while (chan_bucket_take(&tokens, &at, now, 10, 3) == 0) {
			taken++;
			if (taken > 3 && now - last < min_gap)
				min_gap = now - last;
			last = now;
		}
	}
	assert_int_equal(taken, 3 + 99);
	assert_int_equal(min_gap, 100);

	/* idle for an hour: still only a burst */
	taken = 0;
	while (chan_bucket_take(&tokens, &at, 3600000, 10, 3) == 0)
		taken++;
	assert_int_equal(taken, 3);

	/* slow rates wait long; rate 0 is unlimited; burst < 1 counts as 1 */
	tokens = 0;
	at = 0;
	assert_int_equal(chan_bucket_take(&tokens, &at, 0, 0.5, 1), 2000);
	assert_int_equal(chan_bucket_take(&tokens, &at, 2000, 0.5, 1), 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(chan_bucket_take(&tokens, &at, 0, 0, 1), 0);
	tokens = 5;
	at = 0;
	assert_int_equal(chan_bucket_take(&tokens, &at, 1, 1000, 0), 0);
	assert_true(chan_bucket_take(&tokens, &at, 1, 1000, 0) > 0);
}

/* ---- the wrapper ------------------------------------------------------- */

static void test_max_inflight(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct fake f = {.mode = FAKE_HOLD};
	struct cfg_channel cc;
	struct chan *c = fake_chan(&loop, &f, &cc, 3, 0, 1);
	struct tl_send s[5];
	int ndone = 0;
	for (int i = 0; i < 5; i++)
		mk_msg(&s[i], &ndone, "sms", "+989121234567", NULL, "salam", NULL);

	assert_int_equal(chan_free_slots(c), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(chan_send(c, &s[i].m, tl_send_done, &s[i]), 0);
	assert_int_equal(chan_free_slots(c), 0);
	assert_int_equal(chan_send(c, &s[3].m, tl_send_done, &s[3]), -EBUSY);
	assert_int_equal(c->busy, 1);
	assert_int_equal(f.sends, 3);
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(ndone, 0);

	fake_complete(&f, 1);
	assert_int_equal(ndone, 1);
	assert_int_equal(s[1].r.status, CHAN_OK);
	assert_string_equal(s[1].r.provider_id, "fake-1");
	assert_int_equal(chan_free_slots(c), 1);
	assert_int_equal(chan_send(c, &s[3].m, tl_send_done, &s[3]), 0);
	assert_int_equal(chan_send(c, &s[4].m, tl_send_done, &s[4]), -EBUSY);

	/* a smaller window on reload: no new sends until under it */
	struct cfg_channel cc2 = cc;
	cc2.max_inflight = 1;
	cc2.sec = NULL;
	chan_reconfigure(c, &cc2);
	assert_int_equal(chan_free_slots(c), 0);
	fake_complete(&f, 0);
	fake_complete(&f, 2);
	assert_int_equal(chan_free_slots(c), 0);
	fake_complete(&f, 3);
	assert_int_equal(chan_free_slots(c), 1);
	assert_int_equal(ndone, 4);
	assert_int_equal(c->sent_ok, 4);
	tl_stop_all_and_close(&loop, c, 1);
}

static void test_never_synchronous(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct fake f = {.mode = FAKE_SYNC};
	struct cfg_channel cc;
	struct chan *c = fake_chan(&loop, &f, &cc, 4, 0, 1);
	struct tl_send s[2];
	int ndone = 0;
	mk_msg(&s[0], &ndone, "sms", "+989121234567", NULL, "a", NULL);
	mk_msg(&s[1], &ndone, "sms", "+989121234567", NULL, "b", NULL);

	/* the driver reports inside send(): deferred */
	assert_int_equal(chan_send(c, &s[0].m, tl_send_done, &s[0]), 0);
	assert_int_equal(ndone, 0);
	assert_int_equal(c->inflight, 1);
	tl_run_until(&loop, &ndone, 1);
	assert_int_equal(s[0].r.status, CHAN_OK);
	assert_int_equal(c->inflight, 0);

	/* the driver fails to start the send: TEMPFAIL, deferred too */
	f.mode = FAKE_ERR;
	assert_int_equal(chan_send(c, &s[1].m, tl_send_done, &s[1]), 0);
	assert_int_equal(ndone, 1);
	tl_run_until(&loop, &ndone, 2);
	assert_int_equal(s[1].r.status, CHAN_TEMPFAIL);
	assert_string_equal(s[1].r.reason, "driver: Input/output error");
	assert_int_equal(c->sent_ok, 1);
	assert_int_equal(c->sent_temp, 1);
	assert_int_equal(c->inflight, 0);
	tl_stop_all_and_close(&loop, c, 1);
}

static void test_rate_fifo(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct fake f = {.mode = FAKE_ASYNC};
	struct cfg_channel cc;
	struct chan *c = fake_chan(&loop, &f, &cc, 10, 50, 2);
	struct tl_send s[6];
	int ndone = 0;
	for (int i = 0; i < 6; i++) {
		mk_msg(&s[i], &ndone, "sms", "+989121234567", NULL, "x", NULL);
		assert_int_equal(chan_send(c, &s[i].m, tl_send_done, &s[i]), 0);
	}
	/* the burst reached the driver, the rest wait for tokens and count */
	assert_int_equal(f.sends, 2);
	assert_int_equal(c->inflight, 6);
	assert_int_equal(chan_free_slots(c), 4);
	tl_run_until(&loop, &ndone, 6);
	assert_int_equal(f.sends, 6);
	for (int i = 0; i < 6; i++) {
		assert_ptr_equal(f.seen[i], &s[i].m); /* FIFO */
		assert_int_equal(s[i].r.status, CHAN_OK);
	}

	/* reload to unlimited: the queue drains on the next loop turn */
	struct cfg_channel slow = cc;
	slow.rate = 0.001;
	slow.burst = 1;
	chan_reconfigure(c, &slow);
	c->tokens = 0;
	f.mode = FAKE_HOLD;
	f.sends = 0;
	struct tl_send t[3];
	int n2 = 0;
	for (int i = 0; i < 3; i++) {
		mk_msg(&t[i], &n2, "sms", "+989121234567", NULL, "y", NULL);
		assert_int_equal(chan_send(c, &t[i].m, tl_send_done, &t[i]), 0);
	}
	assert_int_equal(f.sends, 0);
	struct cfg_channel fast = cc;
	fast.rate = 0;
	chan_reconfigure(c, &fast);
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(f.sends, 3);
	for (int i = 0; i < 3; i++)
		fake_complete(&f, i);
	assert_int_equal(n2, 3);
	tl_stop_all_and_close(&loop, c, 1);
}

struct stop_check {
	int stopped;
	int *ndone;
	int done_at_stop;
};

static void on_stopped_check(void *arg)
{
	struct stop_check *sc = arg;
	sc->stopped++;
	sc->done_at_stop = *sc->ndone;
}

static void test_stop(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct fake f = {.mode = FAKE_ASYNC};
	struct cfg_channel cc;
	struct chan *c = fake_chan(&loop, &f, &cc, 10, 0.001, 1);
	struct tl_send s[3];
	int ndone = 0;
	for (int i = 0; i < 3; i++) {
		mk_msg(&s[i], &ndone, "sms", "+989121234567", NULL, "x", NULL);
		assert_int_equal(chan_send(c, &s[i].m, tl_send_done, &s[i]), 0);
	}
	assert_int_equal(f.sends, 1);

	struct stop_check sc = {.ndone = &ndone};
	chan_stop_all(c, 1, on_stopped_check, &sc);
	assert_int_equal(ndone, 0); /* even "shutting down" is deferred */
	assert_int_equal(chan_free_slots(c), 0);
	struct tl_send late;
	int nlate = 0;
	mk_msg(&late, &nlate, "sms", "+989121234567", NULL, "x", NULL);
	assert_int_equal(chan_send(c, &late.m, tl_send_done, &late), -EBUSY);

	tl_run_until(&loop, &sc.stopped, 1);
	assert_int_equal(sc.done_at_stop, 3);
	assert_int_equal(s[0].r.status, CHAN_OK);
	for (int i = 1; i < 3; i++) {
		assert_int_equal(s[i].r.status, CHAN_TEMPFAIL);
		assert_string_equal(s[i].r.reason, "shutting down");
	}
	assert_int_equal(f.sends, 1);
	chan_free_all(c, 1);
	assert_int_equal(tl_loop_finish(&loop), 0);

	/* nothing to stop: the callback still comes, once */
	int st = 0;
	chan_stop_all(NULL, 0, tl_on_count, &st);
	assert_int_equal(st, 1);
}

/* ---- adaptive window and circuit breaker ------------------------------ */

/*
 * A scripted driver, registered nowhere but here: every send is held until
 * the test says how it ends (script_reply); the answers then come from a
 * uv timer, as from a real transport.
 */
struct script_send {
	const struct chan_msg *m;
	chan_done_cb done;
	void *arg;
	int state; /* 0 held, 1 answer due, 2 answered */
	struct chan_result r;
};

struct script {
	struct chan *c;
	uv_timer_t t;
	struct script_send s[64];
	int n; /* sends the driver saw */
	int answered;
	int stopping;
	void (*stopped)(struct chan *c);
};

static void script_closed(uv_handle_t *h)
{
	struct script *sc = h->data;
	sc->stopped(sc->c);
}

static void script_timer(uv_timer_t *t)
{
	struct script *sc = t->data;
	for (int i = 0; i < sc->n; i++) {
		if (sc->s[i].state != 1)
			continue;
		sc->s[i].state = 2;
		sc->answered++;
		sc->s[i].done(sc->s[i].arg, &sc->s[i].r);
	}
	if (sc->stopping && sc->answered == sc->n && !uv_is_closing((uv_handle_t *)&sc->t))
		uv_close((uv_handle_t *)&sc->t, script_closed);
}

static int script_start(struct chan *c, uv_loop_t *loop)
{
	struct script *sc = c->priv;
	sc->c = c;
	uv_timer_init(loop, &sc->t);
	sc->t.data = sc;
	return 0;
}

static int script_send(struct chan *c, const struct chan_msg *m, chan_done_cb done, void *arg)
{
	struct script *sc = c->priv;
	assert_true(sc->n < 64);
	struct script_send *x = &sc->s[sc->n++];
	x->m = m;
	x->done = done;
	x->arg = arg;
	x->state = 0;
	return 0;
}

static void script_stop(struct chan *c, void (*stopped)(struct chan *c))
{
	struct script *sc = c->priv;
	sc->stopping = 1;
	sc->stopped = stopped;
	if (sc->answered == sc->n)
		uv_close((uv_handle_t *)&sc->t, script_closed);
}

static const struct chan_driver script_driver = {
    .name = "script",
    .start = script_start,
    .send = script_send,
    .stop = script_stop,
};

/* The oldest `count` held sends end with `st` (retry-after ra ms), from the
 * loop. */
static void script_reply(struct script *sc, int count, enum chan_status st, int64_t ra)
{
	for (int i = 0; i < sc->n && count > 0; i++) {
		struct script_send *x = &sc->s[i];
		if (x->state != 0)
			continue;
		memset(&x->r, 0, sizeof x->r);
		x->r.status = st;
		x->r.retry_after_ms = ra;
		snprintf(x->r.reason, sizeof x->r.reason, "%s",
		         st == CHAN_OK         ? ""
		         : st == CHAN_TEMPFAIL ? "scripted 503"
		                               : "scripted 400");
		x->state = 1;
		count--;
	}
	assert_int_equal(count, 0);
	uv_timer_start(&sc->t, script_timer, 1, 0);
}

static int script_held(const struct script *sc)
{
	int n = 0;
	for (int i = 0; i < sc->n; i++)
		n += sc->s[i].state == 0;
	return n;
}

/* A channel of the scripted driver from a real [channel.sms] section. */
static struct chan *script_chan(uv_loop_t *loop, struct script *sc, const char *name,
                                const char *keys, struct config **cfgp)
{
	char text[1024];
	snprintf(text, sizeof text, "[channel.sms]\ndriver = script\n%s", keys);
	struct cfg_error err;
	struct config *cfg = load_cfg(name, text, &err);
	if (!cfg)
		fail_msg("%s", err.msg);
	memset(sc, 0, sizeof *sc);
	struct chan *c = xcalloc(1, sizeof *c);
	c->drv = &script_driver;
	c->cfg = config_channel(cfg, "sms");
	assert_non_null(c->cfg);
	assert_int_equal(cfg_sec_check_unused(c->cfg->sec, &err), 0);
	c->priv = sc;
	assert_int_equal(chan_start_all(c, 1, loop), 0);
	*cfgp = cfg;
	return c;
}

/*
 * A dispatcher in miniature: messages wait in its queue, it sends while the
 * channel takes them, and only the wake hook makes it try again.
 */
struct mini {
	struct chan *c;
	chan_done_cb cb; /* NULL: tl_send_done */
	struct tl_send *q[64];
	int head, tail;
	int wakes;
	int wake_seq[8]; /* order_seq stamps of the first wakes */
};

static int order_seq;

static void mini_pump(struct mini *d)
{
	while (d->head < d->tail) {
		int r =
		    chan_send(d->c, &d->q[d->head]->m, d->cb ? d->cb : tl_send_done, d->q[d->head]);
		if (r == -EBUSY)
			return;
		assert_int_equal(r, 0);
		d->head++;
	}
}

static void mini_wake(void *arg)
{
	struct mini *d = arg;
	if (d->wakes < 8)
		d->wake_seq[d->wakes] = ++order_seq;
	d->wakes++;
	mini_pump(d);
}

/* A timer armed from a done callback, i.e. at the very loop time the
 * circuit opened: it must fire while the circuit is still open. */
struct peek {
	uv_timer_t t;
	struct chan *c;
	uint64_t ms;
	int seq; /* order stamp when it fired */
	char state[16];
	int inited;
};

static void peek_cb(uv_timer_t *t)
{
	struct peek *p = t->data;
	p->seq = ++order_seq;
	snprintf(p->state, sizeof p->state, "%s", chan_circuit_state(p->c));
}

static struct peek *armed_peek;

/* What the caller sees from inside its done callback: the report has
 * already been learnt from (a dispatcher resends from there). */
static struct chan *seen_chan;
static int seen_window = -1, seen_free = -1;
static char seen_state[16];

static void on_done_seen(void *arg, const struct chan_result *r)
{
	tl_send_done(arg, r);
	if (!seen_chan)
		return;
	seen_window = chan_window(seen_chan);
	seen_free = chan_free_slots(seen_chan);
	snprintf(seen_state, sizeof seen_state, "%s", chan_circuit_state(seen_chan));
}

/* tl_send_done, and arm the peek if one is waiting to be armed. */
static void on_done_peek(void *arg, const struct chan_result *r)
{
	on_done_seen(arg, r);
	struct peek *p = armed_peek;
	armed_peek = NULL;
	if (!p)
		return;
	if (!p->inited) {
		uv_timer_init(p->c->loop, &p->t);
		p->t.data = p;
		p->inited = 1;
	}
	p->seq = 0;
	p->state[0] = '\0';
	uv_timer_start(&p->t, peek_cb, p->ms, 0);
}

static void peek_close(struct peek *p)
{
	if (p->inited)
		uv_close((uv_handle_t *)&p->t, NULL);
}

/* Send one message now (it must be accepted). */
static void send_one(struct chan *c, struct tl_send *s, int *ndone, chan_done_cb cb)
{
	mk_msg(s, ndone, "sms", "+989121234567", NULL, "salam", NULL);
	assert_int_equal(chan_send(c, &s->m, cb, s), 0);
}

static int count_lines(const char *text, const char *needle)
{
	int n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* stderr into a file while a test runs (the log sink writes there). */
static int saved_stderr = -1;
static char capture_path[320];

static void capture_begin(void)
{
	snprintf(capture_path, sizeof capture_path, "%s/breaker.log", tmpdir);
	saved_stderr = tl_capture_stderr_begin(capture_path, 0);
	assert_true(saved_stderr >= 0);
	log_setup(LOG_NOTICE, LOG_FMT_KV);
}

static char *capture_end(void)
{
	log_setup(LOG_WARNING, LOG_FMT_KV);
	if (saved_stderr < 0)
		return NULL;
	tl_capture_stderr_end(saved_stderr);
	saved_stderr = -1;
	return read_text(capture_path, NULL);
}

static int capture_teardown(void **state)
{
	(void)state;
	free(capture_end()); /* after a failed test too */
	return 0;
}

static void test_window(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct script sc;
	struct config *cfg;
	struct chan *c = script_chan(&loop, &sc, "window.conf", "max_inflight = 8\n", &cfg);
	struct mini d = {.c = c};
	chan_set_wake(c, mini_wake, &d);
	static struct tl_send s[64];
	int ndone = 0, ns = 0;

	/* slow start: max_inflight / 4, rounded up */
	assert_string_equal(chan_circuit_state(c), "closed");
	assert_int_equal(c->window_initial, 2);
	assert_int_equal(chan_window(c), 2);
	assert_int_equal(chan_free_slots(c), 2);
	seen_chan = c;
	send_one(c, &s[ns++], &ndone, on_done_seen);
	send_one(c, &s[ns++], &ndone, tl_send_done);
	mk_msg(&s[ns], &ndone, "sms", "+989121234567", NULL, "x", NULL);
	assert_int_equal(chan_send(c, &s[ns].m, tl_send_done, &s[ns]), -EBUSY);
	assert_int_equal(c->busy, 1);
	assert_int_equal(sc.n, 2);

	/* each OK opens it by one, and says so */
	script_reply(&sc, 1, CHAN_OK, 0);
	tl_run_until(&loop, &ndone, 1);
	seen_chan = NULL;
	assert_int_equal(seen_window, 3);
	assert_int_equal(seen_free, 2);
	assert_int_equal(chan_window(c), 3);
	assert_int_equal(chan_free_slots(c), 2);
	assert_int_equal(d.wakes, 1);
	script_reply(&sc, 1, CHAN_OK, 0);
	tl_run_until(&loop, &ndone, 2);
	assert_int_equal(chan_window(c), 4);
	for (int i = 0; i < 4; i++)
		send_one(c, &s[ns++], &ndone, tl_send_done);
	assert_int_equal(chan_free_slots(c), 0);
	script_reply(&sc, 4, CHAN_OK, 0);
	tl_run_until(&loop, &ndone, 6);
	assert_int_equal(chan_window(c), 8);
	assert_int_equal(d.wakes, 6);

	/* ... up to max_inflight and no further */
	for (int i = 0; i < 8; i++)
		send_one(c, &s[ns++], &ndone, tl_send_done);
	mk_msg(&s[ns], &ndone, "sms", "+989121234567", NULL, "x", NULL);
	assert_int_equal(chan_send(c, &s[ns].m, tl_send_done, &s[ns]), -EBUSY);
	script_reply(&sc, 8, CHAN_OK, 0);
	tl_run_until(&loop, &ndone, 14);
	assert_int_equal(chan_window(c), 8);
	assert_int_equal(d.wakes, 6);

	/* TEMPFAIL halves it, down to 1 */
	static const int halves[] = {4, 2, 1, 1};
	for (int i = 0; i < 4; i++) {
		send_one(c, &s[ns++], &ndone, tl_send_done);
		script_reply(&sc, 1, CHAN_TEMPFAIL, 0);
		tl_run_until(&loop, &ndone, 15 + i);
		assert_int_equal(chan_window(c), halves[i]);
		assert_int_equal(chan_free_slots(c), halves[i]);
	}
	assert_int_equal(c->window_shrinks, 3);
	assert_int_equal(c->tempfails, 4);

	/* PERMFAIL is about the message: nothing changes */
	send_one(c, &s[ns++], &ndone, tl_send_done);
	script_reply(&sc, 1, CHAN_PERMFAIL, 0);
	tl_run_until(&loop, &ndone, 19);
	assert_int_equal(s[ns - 1].r.status, CHAN_PERMFAIL);
	assert_int_equal(chan_window(c), 1);
	assert_int_equal(c->tempfails, 4);
	assert_string_equal(chan_circuit_state(c), "closed");

	/* an OK ends the run of failures and opens the window again */
	send_one(c, &s[ns++], &ndone, tl_send_done);
	script_reply(&sc, 1, CHAN_OK, 0);
	tl_run_until(&loop, &ndone, 20);
	assert_int_equal(chan_window(c), 2);
	assert_int_equal(c->tempfails, 0);
	assert_int_equal(c->sent_ok, 15);
	assert_int_equal(c->sent_temp, 4);
	assert_int_equal(c->sent_perm, 1);
	assert_int_equal(c->circuit_opens, 0);
	tl_stop_all_and_close(&loop, c, 1);
	config_free(cfg);

	/* the default for small max_inflight: at least 1, rounded up */
	static const struct {
		const char *keys;
		int want;
	} defs[] = {{"max_inflight = 1\n", 1},
	            {"max_inflight = 5\n", 2},
	            {"", 16},
	            {"max_inflight = 64\nwindow_initial = 64\n", 64}};
	for (size_t i = 0; i < ARRAY_SIZE(defs); i++) {
		uv_loop_init(&loop);
		c = script_chan(&loop, &sc, "window.conf", defs[i].keys, &cfg);
		assert_int_equal(chan_window(c), defs[i].want);
		assert_int_equal(chan_free_slots(c), defs[i].want);
		tl_stop_all_and_close(&loop, c, 1);
		config_free(cfg);
	}
}

static void expect_load_error(const char *keys, const char *want)
{
	char text[1024];
	snprintf(text, sizeof text, "[channel.sms]\ndriver = script\n%s", keys);
	struct cfg_error err;
	struct config *cfg = load_cfg("breaker-err.conf", text, &err);
	if (cfg) {
		config_free(cfg);
		fail_msg("'%s' loaded", keys);
	}
	if (!strstr(err.msg, want))
		fail_msg("error '%s' does not contain '%s'", err.msg, want);
}

static void test_breaker_config(void **state)
{
	(void)state;
	expect_load_error("max_inflight = 8\nwindow_initial = 9\n",
	                  ":4: channel.sms.window_initial: must be between 1 and 8");
	expect_load_error("window_initial = 0\n", ":3: channel.sms.window_initial:");
	expect_load_error("breaker_failures = -1\n", ":3: channel.sms.breaker_failures:");
	expect_load_error("breaker_probe = 5ms\n",
	                  ":3: channel.sms.breaker_probe: must be between");
	expect_load_error("breaker_probe = soon\n", ":3: channel.sms.breaker_probe:");
	expect_load_error("breaker_probe = 1s\nbreaker_probe_max = 500ms\n",
	                  ":3: channel.sms.breaker_probe: must not be greater than "
	                  "breaker_probe_max (500ms)");
	expect_load_error("breaker_probe_max = 20s\n",
	                  ":3: channel.sms.breaker_probe_max: must not be less than breaker_probe "
	                  "(30s)");
	expect_load_error("breaker_probe_max = 2d\n", ":3: channel.sms.breaker_probe_max:");

	/* the defaults, and every key taken */
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct script sc;
	struct config *cfg;
	struct chan *c = script_chan(&loop, &sc, "breaker-ok.conf", "", &cfg);
	assert_int_equal(c->breaker_failures, 10);
	assert_int_equal(c->breaker_probe_ms, 30000);
	assert_int_equal(c->breaker_probe_max, 600000);
	tl_stop_all_and_close(&loop, c, 1);
	config_free(cfg);
	uv_loop_init(&loop);
	c = script_chan(&loop, &sc, "breaker-ok.conf",
	                "max_inflight = 6\nwindow_initial = 3\nbreaker_failures = 0\n"
	                "breaker_probe = 250ms\nbreaker_probe_max = 2m\n",
	                &cfg);
	assert_int_equal(c->window_initial, 3);
	assert_int_equal(c->breaker_failures, 0);
	assert_int_equal(c->breaker_probe_ms, 250);
	assert_int_equal(c->breaker_probe_max, 120000);
	/* breaker_failures = 0: it never opens */
	static struct tl_send s[30];
	int ndone = 0;
	for (int i = 0; i < 30; i++) {
		send_one(c, &s[i], &ndone, tl_send_done);
		script_reply(&sc, 1, CHAN_TEMPFAIL, 0);
		tl_run_until(&loop, &ndone, i + 1);
	}
	assert_string_equal(chan_circuit_state(c), "closed");
	assert_int_equal(chan_free_slots(c), 1);
	tl_stop_all_and_close(&loop, c, 1);
	config_free(cfg);
}

static void test_breaker_open_probe(void **state)
{
	(void)state;
	capture_begin();
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct script sc;
	struct config *cfg;
	struct chan *c = script_chan(&loop, &sc, "breaker.conf",
	                             "max_inflight = 4\nwindow_initial = 4\nbreaker_failures = 3\n"
	                             "breaker_probe = 50ms\nbreaker_probe_max = 200ms\n",
	                             &cfg);
	struct mini d = {.c = c, .cb = on_done_peek};
	chan_set_wake(c, mini_wake, &d);
	struct peek pk = {.c = c};
	static struct tl_send s[3], q[8];
	int ndone = 0;

	/* three TEMPFAILs in a row: the window shrinks, then the circuit opens */
	send_one(c, &s[0], &ndone, tl_send_done);
	send_one(c, &s[1], &ndone, tl_send_done);
	send_one(c, &s[2], &ndone, on_done_peek);
	pk.ms = 25; /* half the probe delay */
	armed_peek = &pk;
	script_reply(&sc, 3, CHAN_TEMPFAIL, 0);
	tl_run_until(&loop, &ndone, 3);
	assert_null(armed_peek);
	assert_string_equal(chan_circuit_state(c), "open");
	assert_int_equal(c->circuit_opens, 1);
	assert_int_equal(c->probe_wait_ms, 50);
	assert_int_equal(chan_window(c), 0);
	assert_int_equal(chan_free_slots(c), 0);

	/* while open, new sends are refused: they wait at the caller */
	for (int i = 0; i < 8; i++) {
		mk_msg(&q[i], &ndone, "sms", "+989121234567", NULL, "queued", NULL);
		d.q[d.tail++] = &q[i];
	}
	uint64_t busy = c->busy;
	mini_pump(&d);
	assert_int_equal(d.head, 0);
	assert_int_equal(c->busy, busy + 1);
	assert_int_equal(sc.n, 3);

	/* the timer half-opens it: the wake hook sends exactly one probe */
	tl_run_until(&loop, &d.wakes, 1);
	assert_true(pk.seq > 0 && pk.seq < d.wake_seq[0]);
	assert_string_equal(pk.state, "open");
	assert_string_equal(chan_circuit_state(c), "half_open");
	assert_int_equal(d.head, 1);
	assert_int_equal(sc.n, 4);
	assert_int_equal(c->circuit_probes, 1);
	assert_int_equal(chan_free_slots(c), 0);
	assert_int_equal(chan_window(c), 1);
	mini_pump(&d);
	assert_int_equal(d.head, 1);

	/* a failed probe re-opens it for twice as long, then again (capped) */
	static const int64_t waits[] = {100, 200, 200};
	for (int k = 0; k < 3; k++) {
		/* the probe (q[k]) fails; a peek armed by its report at 3/4 of
		 * the new wait, later than the last wait, sees the circuit open */
		armed_peek = &pk;
		pk.ms = (uint64_t)(waits[k] * 3 / 4);
		script_reply(&sc, 1, CHAN_TEMPFAIL, 0);
		tl_run_until(&loop, &ndone, 4 + k);
		assert_string_equal(chan_circuit_state(c), "open");
		assert_int_equal(c->probe_backoff_ms, waits[k]);
		assert_int_equal(c->probe_wait_ms, waits[k]);
		assert_int_equal(c->circuit_opens, (uint64_t)(2 + k));
		assert_int_equal(chan_free_slots(c), 0);
		tl_run_until(&loop, &d.wakes, 2 + k);
		assert_true(pk.seq > 0 && pk.seq < d.wake_seq[1 + k]);
		assert_string_equal(pk.state, "open");
		assert_string_equal(chan_circuit_state(c), "half_open");
		assert_int_equal(d.head, 2 + k);
	}

	/* the probe succeeds: closed (already inside the probe's done
	 * callback), window back to window_initial, and the waiting messages
	 * go out through the wake hook */
	seen_chan = c;
	script_reply(&sc, 1, CHAN_OK, 0);
	tl_run_until(&loop, &d.wakes, 5);
	seen_chan = NULL;
	assert_string_equal(seen_state, "closed");
	assert_int_equal(seen_free, 4);
	assert_string_equal(chan_circuit_state(c), "closed");
	assert_int_equal(c->probe_backoff_ms, 50);
	assert_int_equal(d.head, 8); /* 4 probes, then the window of 4 */
	assert_int_equal(script_held(&sc), 4);
	assert_int_equal(chan_free_slots(c), 0);
	assert_int_equal(chan_window(c), 4);
	script_reply(&sc, 4, CHAN_OK, 0);
	tl_run_until(&loop, &ndone, 11);
	/* nothing lost: every message reported once, the driver saw each once */
	for (int i = 0; i < 8; i++) {
		assert_int_equal(q[i].done, 1);
		assert_int_equal(q[i].r.status, i < 3 ? CHAN_TEMPFAIL : CHAN_OK);
		assert_ptr_equal(sc.s[3 + i].m, &q[i].m);
	}
	assert_int_equal(sc.n, 11);
	assert_int_equal(c->circuit_opens, 4);
	assert_int_equal(c->circuit_probes, 4);
	peek_close(&pk);
	tl_stop_all_and_close(&loop, c, 1);
	config_free(cfg);

	/* one line per change: warning when opening, notice when closing */
	char *log = capture_end();
	assert_non_null(log);
	assert_int_equal(count_lines(log, "circuit=open"), 4);
	assert_int_equal(count_lines(log, "circuit=closed"), 1);
	assert_int_equal(count_lines(log,
	                             "level=warning sub=chan chan=sms circuit=open from=closed "
	                             "why=tempfails tempfails=3 probe_in_ms=50"),
	                 1);
	assert_int_equal(count_lines(log, "from=half_open why=probe_failed"), 3);
	assert_int_equal(count_lines(log, "level=notice sub=chan chan=sms circuit=closed "
	                                  "from=half_open why=probe_ok"),
	                 1);
	free(log);
}

static void test_breaker_retry_after(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct script sc;
	struct config *cfg;
	struct chan *c = script_chan(&loop, &sc, "breaker.conf",
	                             "max_inflight = 2\nwindow_initial = 1\nbreaker_failures = 2\n"
	                             "breaker_probe = 50ms\nbreaker_probe_max = 300ms\n",
	                             &cfg);
	struct mini d = {.c = c, .cb = on_done_peek};
	chan_set_wake(c, mini_wake, &d);
	struct peek pk = {.c = c};
	static struct tl_send s[2], q[4];
	int ndone = 0;
	for (int i = 0; i < 4; i++) {
		mk_msg(&q[i], &ndone, "sms", "+989121234567", NULL, "queued", NULL);
		d.q[d.tail++] = &q[i];
	}

	send_one(c, &s[0], &ndone, tl_send_done);
	script_reply(&sc, 1, CHAN_TEMPFAIL, 0);
	tl_run_until(&loop, &ndone, 1);
	assert_string_equal(chan_circuit_state(c), "closed");

	/* the opening TEMPFAIL came from a 429 with retry-after 150 ms: longer
	 * than breaker_probe, so it wins */
	send_one(c, &s[1], &ndone, on_done_peek);
	armed_peek = &pk;
	pk.ms = 100;
	script_reply(&sc, 1, CHAN_TEMPFAIL, 150);
	tl_run_until(&loop, &ndone, 2);
	assert_string_equal(chan_circuit_state(c), "open");
	assert_int_equal(c->probe_backoff_ms, 50);
	assert_int_equal(c->probe_wait_ms, 150);
	tl_run_until(&loop, &d.wakes, 1);
	assert_true(pk.seq > 0 && pk.seq < d.wake_seq[0]);
	assert_string_equal(pk.state, "open"); /* 100 ms in: still waiting */
	assert_string_equal(chan_circuit_state(c), "half_open");
	assert_int_equal(d.head, 1);

	/* a retry-after beyond breaker_probe_max is capped there */
	armed_peek = &pk;
	pk.ms = 200;
	script_reply(&sc, 1, CHAN_TEMPFAIL, 10000);
	tl_run_until(&loop, &ndone, 3);
	assert_int_equal(c->probe_backoff_ms, 100);
	assert_int_equal(c->probe_wait_ms, 300);
	tl_run_until(&loop, &d.wakes, 2);
	assert_true(pk.seq > 0 && pk.seq < d.wake_seq[1]);
	assert_string_equal(pk.state, "open");
	assert_int_equal(d.head, 2);

	/* a shorter retry-after than the backoff changes nothing */
	script_reply(&sc, 1, CHAN_TEMPFAIL, 20);
	tl_run_until(&loop, &ndone, 4);
	assert_string_equal(chan_circuit_state(c), "open");
	assert_int_equal(c->probe_backoff_ms, 200);
	assert_int_equal(c->probe_wait_ms, 200);
	assert_int_equal(c->circuit_opens, 3);

	/* stopping while open: the probe timer closes with the rest */
	peek_close(&pk);
	tl_stop_all_and_close(&loop, c, 1);
	config_free(cfg);
	assert_int_equal(d.head, 2); /* the rest still wait at the caller */
}

static void test_breaker_stragglers(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct script sc;
	struct config *cfg;
	struct chan *c = script_chan(&loop, &sc, "breaker.conf",
	                             "max_inflight = 4\nwindow_initial = 4\nbreaker_failures = 2\n"
	                             "breaker_probe = 50ms\nbreaker_probe_max = 1s\n",
	                             &cfg);
	struct mini d = {.c = c};
	chan_set_wake(c, mini_wake, &d);
	static struct tl_send s[6], q[3];
	int ndone = 0;

	/* four in flight; two fail: open, the other two are still out */
	for (int i = 0; i < 4; i++)
		send_one(c, &s[i], &ndone, tl_send_done);
	script_reply(&sc, 2, CHAN_TEMPFAIL, 0);
	tl_run_until(&loop, &ndone, 2);
	assert_string_equal(chan_circuit_state(c), "open");
	int64_t at = c->probe_at;

	/* a straggler's retry-after pushes the probe back; no new open */
	script_reply(&sc, 1, CHAN_TEMPFAIL, 500);
	tl_run_until(&loop, &ndone, 3);
	assert_string_equal(chan_circuit_state(c), "open");
	assert_true(c->probe_at > at);
	assert_int_equal(c->circuit_opens, 1);

	/* a straggler's OK: the provider answers, the circuit closes */
	script_reply(&sc, 1, CHAN_OK, 0);
	tl_run_until(&loop, &ndone, 4);
	assert_string_equal(chan_circuit_state(c), "closed");
	assert_false(uv_is_active((uv_handle_t *)&c->probe_timer));
	assert_int_equal(chan_window(c), 4);
	assert_int_equal(d.wakes, 1);
	assert_int_equal(c->circuit_probes, 0);

	/* open again; the probe ends in PERMFAIL (about the message): still
	 * half-open, and the next send is the probe */
	send_one(c, &s[4], &ndone, tl_send_done);
	send_one(c, &s[5], &ndone, tl_send_done);
	script_reply(&sc, 2, CHAN_TEMPFAIL, 0);
	tl_run_until(&loop, &ndone, 6);
	assert_string_equal(chan_circuit_state(c), "open");
	for (int i = 0; i < 3; i++) {
		mk_msg(&q[i], &ndone, "sms", "+989121234567", NULL, "queued", NULL);
		d.q[d.tail++] = &q[i];
	}
	tl_run_until(&loop, &d.wakes, 2);
	assert_string_equal(chan_circuit_state(c), "half_open");
	assert_int_equal(d.head, 1);
	script_reply(&sc, 1, CHAN_PERMFAIL, 0);
	tl_run_until(&loop, &ndone, 7);
	assert_int_equal(q[0].r.status, CHAN_PERMFAIL);
	assert_string_equal(chan_circuit_state(c), "half_open");
	assert_int_equal(d.wakes, 3);
	assert_int_equal(d.head, 2);
	assert_int_equal(c->circuit_probes, 2);
	assert_int_equal(chan_free_slots(c), 0);

	script_reply(&sc, 1, CHAN_OK, 0);
	tl_run_until(&loop, &ndone, 8);
	assert_string_equal(chan_circuit_state(c), "closed");
	assert_int_equal(d.head, 3);
	script_reply(&sc, 1, CHAN_OK, 0);
	tl_run_until(&loop, &ndone, 9);
	assert_int_equal(c->circuit_opens, 2);
	tl_stop_all_and_close(&loop, c, 1);
	config_free(cfg);
}

static void test_breaker_reconfigure(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct script sc;
	struct config *cfg[4];
	struct cfg_error err;
	struct chan *c = script_chan(&loop, &sc, "reload-a.conf",
	                             "max_inflight = 8\nwindow_initial = 8\nbreaker_failures = 2\n"
	                             "breaker_probe = 1h\nbreaker_probe_max = 1h\n",
	                             &cfg[0]);
	static const char *const next[] = {
	    "max_inflight = 2\nwindow_initial = 2\nbreaker_failures = 5\n"
	    "breaker_probe = 1h\nbreaker_probe_max = 1h\n",
	    "max_inflight = 2\nwindow_initial = 2\nbreaker_failures = 5\n"
	    "breaker_probe = 50ms\nbreaker_probe_max = 100ms\n",
	    "max_inflight = 2\nwindow_initial = 2\nbreaker_failures = 0\n"
	    "breaker_probe = 50ms\nbreaker_probe_max = 100ms\n",
	};
	for (int i = 0; i < 3; i++) {
		char text[512];
		snprintf(text, sizeof text, "[channel.sms]\ndriver = script\n%s", next[i]);
		char name[32];
		snprintf(name, sizeof name, "reload-%d.conf", i);
		cfg[i + 1] = load_cfg(name, text, &err);
		if (!cfg[i + 1])
			fail_msg("%s", err.msg);
	}
	struct mini d = {.c = c};
	chan_set_wake(c, mini_wake, &d);
	static struct tl_send s[8], q[3];
	int ndone = 0;
	assert_int_equal(chan_window(c), 8);

	/* a smaller max_inflight clamps the window; breaker_failures 5 */
	chan_reconfigure(c, config_channel(cfg[1], "sms"));
	assert_int_equal(chan_window(c), 2);
	assert_int_equal(chan_free_slots(c), 2);
	assert_int_equal(c->window_initial, 2);
	assert_int_equal(c->breaker_failures, 5);
	for (int i = 0; i < 5; i++) {
		send_one(c, &s[i], &ndone, tl_send_done);
		script_reply(&sc, 1, CHAN_TEMPFAIL, 0);
		tl_run_until(&loop, &ndone, i + 1);
		assert_string_equal(chan_circuit_state(c), i < 4 ? "closed" : "open");
	}
	assert_int_equal(c->probe_wait_ms, 3600000);

	/* a shorter breaker_probe_max shortens the wait under way (else the
	 * hour would trip run_until's guard) */
	for (int i = 0; i < 3; i++) {
		mk_msg(&q[i], &ndone, "sms", "+989121234567", NULL, "queued", NULL);
		d.q[d.tail++] = &q[i];
	}
	chan_reconfigure(c, config_channel(cfg[2], "sms"));
	assert_string_equal(chan_circuit_state(c), "open");
	assert_int_equal(c->probe_wait_ms, 100);
	assert_int_equal(c->probe_backoff_ms, 100);
	tl_run_until(&loop, &d.wakes, 1);
	assert_string_equal(chan_circuit_state(c), "half_open");
	assert_int_equal(d.head, 1);
	script_reply(&sc, 1, CHAN_TEMPFAIL, 0);
	tl_run_until(&loop, &ndone, 6);
	assert_string_equal(chan_circuit_state(c), "open");
	assert_int_equal(c->probe_wait_ms, 100); /* doubling, capped */

	/* breaker_failures = 0 turns the breaker off: closed at once, and the
	 * waiting messages go */
	chan_reconfigure(c, config_channel(cfg[3], "sms"));
	assert_string_equal(chan_circuit_state(c), "closed");
	assert_int_equal(d.wakes, 2);
	assert_int_equal(d.head, 3);
	assert_int_equal(chan_window(c), 2);
	script_reply(&sc, 2, CHAN_OK, 0);
	tl_run_until(&loop, &ndone, 8);
	assert_int_equal(q[1].r.status, CHAN_OK);
	assert_int_equal(q[2].r.status, CHAN_OK);
	tl_stop_all_and_close(&loop, c, 1);
	for (int i = 0; i < 4; i++)
		config_free(cfg[i]);
}

/* ---- registry and configuration --------------------------------------- */

static void expect_cfg_error(const char *text, const char *want)
{
	struct cfg_error err;
	struct config *cfg = load_cfg("err.conf", text, &err);
	if (!cfg)
		fail_msg("config_load failed: %s", err.msg);
	struct chan *chans = NULL;
	size_t n = 0;
	memset(&err, 0, sizeof err);
	assert_int_equal(chan_configure_all(cfg, &chans, &n, &err), -1);
	if (!strstr(err.msg, want))
		fail_msg("error '%s' does not contain '%s'", err.msg, want);
	assert_null(strstr(err.msg, "hunter2")); /* URLs are never echoed */
	config_free(cfg);
}

static void test_registry_and_config(void **state)
{
	(void)state;
	assert_ptr_equal(chan_driver_find("outbox"), &chan_outbox_driver);
	assert_ptr_equal(chan_driver_find("webhook"), &chan_webhook_driver);
	assert_null(chan_driver_find("smtp-nope"));
	assert_null(chan_driver_find(NULL));

	char text[2048];
	snprintf(text, sizeof text,
	         "[outbox]\ndir = %s/o\n\n[channel.email]\ndriver = outbox\n\n"
	         "[channel.sms]\ndriver = bogus\n",
	         tmpdir);
	char want[512];
	snprintf(want, sizeof want, "%s/err.conf:8: channel.sms.driver: unknown driver 'bogus'",
	         tmpdir);
	expect_cfg_error(text, want);

	expect_cfg_error("[channel.sms]\ndriver = outbox\ncolour = red\n",
	                 ":3: channel.sms.colour: unknown key");
	expect_cfg_error("[channel.sms]\ndriver = outbox\nfsync = maybe\n", "channel.sms.fsync");
	expect_cfg_error("[channel.chat]\ndriver = webhook\nsecret_file = /x\n",
	                 "channel.chat.url: is required");
	expect_cfg_error("[channel.chat]\ndriver = webhook\nurl = ftp://hunter2@h/\n",
	                 ":3: channel.chat.url: must start with http:// or https://");
	expect_cfg_error("[channel.chat]\ndriver = webhook\nurl = http://h/?key=hunter2\n",
	                 "channel.chat.secret_file: is required");
	expect_cfg_error("[channel.chat]\ndriver = webhook\nurl = http://h/?key=hunter2\n"
	                 "secret_file = /nonexistent/clubd-secret\n",
	                 ":4: channel.chat.secret_file:");
	snprintf(text, sizeof text,
	         "[channel.chat]\ndriver = webhook\nurl = https://h/\nsecret_file = %s\n"
	         "max_host_connections = 0\n",
	         secret_path);
	expect_cfg_error(text, ":5: channel.chat.max_host_connections:");

	/* a good file: both drivers, every key consumed */
	snprintf(text, sizeof text,
	         "[outbox]\ndir = %s/o\n\n[channel.sms]\ndriver = outbox\nfsync = no\n\n"
	         "[channel.chat]\ndriver = webhook\nurl = https://h/\ninsecure_no_signature = yes\n"
	         "max_host_connections = 4\n",
	         tmpdir);
	struct cfg_error err;
	struct config *cfg = load_cfg("good.conf", text, &err);
	if (!cfg)
		fail_msg("%s", err.msg);
	struct chan *chans;
	size_t n;
	assert_int_equal(chan_configure_all(cfg, &chans, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_non_null(chan_find(chans, n, "chat"));
	assert_ptr_equal(chan_find(chans, n, "chat")->drv, &chan_webhook_driver);
	assert_null(chan_find(chans, n, "email"));
	assert_null(chans[0].root);
	chan_free_all(chans, n); /* configured, never started */
	config_free(cfg);
}

/* ---- outbox ------------------------------------------------------------ */

static const char fa_subject[] =
    "\xd8\xa8\xd8\xb1\xd8\xa7\xdb\x8c \xd8\xb4\xd9\x85\xd8\xa7 \xd9\x85\xd8\xb4\xd8\xaa\xd8\xb1"
    "\xdb\x8c \xd8\xb9\xd8\xb2\xdb\x8c\xd8\xb2\xd8\x8c \xd8\xac\xd8\xb4\xd9\x86\xd9\x88\xd8\xa7"
    "\xd8\xb1\xd9\x87 \xdb\x8c\xd9\x84\xd8\xaf\xd8\xa7 \xd9\x85\xd8\xa8\xd8\xa7\xd8\xb1\xda\xa9 "
    "\xd8\xa8\xd8\xa7\xd8\xaf \xe2\x80\x94 \xd8\xaa\xd8\xae\xd9\x81\xdb\x8c\xd9\x81 \xdb\xb2\xdb"
    "\xb0\xdb\xaa \xd8\xa8\xd8\xb1\xd8\xa7\xdb\x8c \xd8\xb4\xd9\x85\xd8\xa7 \xf0\x9f\x8e\x89";
static const char fa_text[] = TL_FA_TEXT;

/* Decode standard base64 (no white space); -1 on bad input. */
static int b64_decode(const char *in, size_t n, struct buf *out)
{
	if (n % 4)
		return -1;
	unsigned char *tmp = xmalloc(n / 4 * 3 + 1);
	int len = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)n);
	if (len < 0) {
		free(tmp);
		return -1;
	}
	if (n >= 1 && in[n - 1] == '=')
		len--;
	if (n >= 2 && in[n - 2] == '=')
		len--;
	buf_append(out, tmp, (size_t)len);
	free(tmp);
	return 0;
}

static int utf8_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t l = s[i] < 0x80             ? 1
		           : (s[i] & 0xe0) == 0xc0 ? 2
		           : (s[i] & 0xf0) == 0xe0 ? 3
		           : (s[i] & 0xf8) == 0xf0 ? 4
		                                   : 0;
		if (!l || i + l > n)
			return 0;
		for (size_t k = 1; k < l; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
		i += l;
	}
	return 1;
}

/* Header checks in C: line lengths, encoded words, the base64 body. */
static void check_maildir_message(const char *path, const char *subject, const char *text)
{
	size_t len;
	char *msg = read_text(path, &len);
	char *sep = strstr(msg, "\r\n\r\n");
	assert_non_null(sep);
	sep[2] = '\0'; /* keep the last header's CRLF */
	const char *body = sep + 4;

	/* headers: CRLF lines of at most 78 characters */
	struct buf subj;
	buf_init(&subj, 0);
	int in_subject = 0, saw_date = 0, saw_mid = 0, saw_cte = 0, saw_ct = 0;
	char *save = NULL;
	for (char *line = strtok_r(msg, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t l = strlen(line);
		assert_true(l > 0 && line[l - 1] == '\r');
		line[--l] = '\0';
		assert_true(l <= 78);
		if (line[0] != ' ')
			in_subject = strncmp(line, "Subject: ", 9) == 0;
		if (strncmp(line, "Date: ", 6) == 0)
			saw_date = 1;
		if (strcmp(line, "Content-Transfer-Encoding: base64") == 0)
			saw_cte = 1;
		if (strcmp(line, "Content-Type: text/plain; charset=UTF-8") == 0)
			saw_ct = 1;
		if (strncmp(line, "Message-ID: <", 13) == 0 && strstr(line, "@clubd>"))
			saw_mid = 1;
		if (!in_subject)
			continue;
		const char *w = line[0] == ' ' ? line + 1 : line + 9;
		size_t wl = strlen(w);
		assert_true(wl <= 75);
		assert_true(l <= 76);
		assert_memory_equal(w, "=?UTF-8?B?", 10);
		assert_string_equal(w + wl - 2, "?=");
		struct buf part;
		buf_init(&part, 0);
		assert_int_equal(b64_decode(w + 10, wl - 12, &part), 0);
		/* no encoded word splits a UTF-8 character */
		assert_true(utf8_ok((const unsigned char *)part.p, part.len));
		buf_append(&subj, part.p, part.len);
		buf_free(&part);
	}
	assert_true(saw_date);
	assert_true(saw_mid);
	assert_true(saw_cte);
	assert_true(saw_ct);
	assert_non_null(subj.p);
	assert_string_equal(subj.p, subject);
	buf_free(&subj);

	/* body: base64 lines of at most 76 characters */
	struct buf dec;
	buf_init(&dec, 0);
	const char *p = body;
	while (*p) {
		const char *eol = strstr(p, "\r\n");
		assert_non_null(eol);
		assert_true(eol - p <= 76);
		assert_int_equal(b64_decode(p, (size_t)(eol - p), &dec), 0);
		p = eol + 2;
	}
	assert_non_null(dec.p);
	struct buf crlf; /* text parts travel with CRLF line ends */
	buf_init(&crlf, 0);
	for (const char *q = text; *q; q++)
		buf_append(&crlf, *q == '\n' ? "\r\n" : q, *q == '\n' ? 2 : 1);
	assert_string_equal(dec.p, crlf.p);
	buf_free(&crlf);
	buf_free(&dec);
	free(msg);
}

/* An independent parser: Python's email package. */
static json_t *python_parse_mail(const char *path)
{
	char cmd[4096];
	snprintf(cmd, sizeof cmd,
	         "/usr/bin/python3 -c '"
	         "import email, json, sys\n"
	         "from email import policy\n"
	         "m = email.message_from_binary_file(open(sys.argv[1], \"rb\"), "
	         "policy=policy.default)\n"
	         "p = m.get_body((\"plain\",))\n"
	         "h = m.get_body((\"html\",))\n"
	         "print(json.dumps({\"subject\": str(m[\"subject\"]), \"to\": str(m[\"to\"]), "
	         "\"from\": str(m[\"from\"]), \"type\": m.get_content_type(), "
	         "\"defects\": len(m.defects), "
	         "\"text\": p.get_content().replace(\"\\r\\n\", \"\\n\") if p else None, "
	         "\"html\": h.get_content() if h else None}))' '%s'",
	         path);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	char *out = tl_read_stream(f, NULL);
	assert_int_equal(pclose(f), 0);
	json_t *j = json_loads(out, 0, NULL);
	free(out);
	assert_non_null(j);
	return j;
}

static char *find_new_file(const char *dir, const char *name)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return xstrdup(path);
}

static int count_dir(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void outbox_run(const char *conf, int nsms, struct tl_send *sms, struct tl_send *mail,
                       int nmail, int *ndone)
{
	struct cfg_error err;
	struct config *cfg = load_cfg("outbox.conf", conf, &err);
	if (!cfg)
		fail_msg("%s", err.msg);
	struct chan *chans;
	size_t n;
	if (chan_configure_all(cfg, &chans, &n, &err) < 0)
		fail_msg("%s", err.msg);
	uv_loop_t loop;
	uv_loop_init(&loop);
	assert_int_equal(chan_start_all(chans, n, &loop), 0);
	struct chan *cs = chan_find(chans, n, "sms"), *ce = chan_find(chans, n, "email");
	assert_non_null(cs);
	assert_non_null(ce);
	for (int i = 0; i < nsms; i++)
		assert_int_equal(chan_send(cs, &sms[i].m, tl_send_done, &sms[i]), 0);
	for (int i = 0; i < nmail; i++)
		assert_int_equal(chan_send(ce, &mail[i].m, tl_send_done, &mail[i]), 0);
	assert_int_equal(*ndone, 0);
	tl_run_until(&loop, ndone, nsms + nmail);
	tl_stop_all_and_close(&loop, chans, n);
	config_free(cfg);
}

static void test_outbox(void **state)
{
	(void)state;
	char conf[2048], odir[320];
	snprintf(odir, sizeof odir, "%s/outbox", tmpdir);
	snprintf(conf, sizeof conf,
	         "[outbox]\ndir = %s\n\n[channel.sms]\ndriver = outbox\nmax_inflight = 64\n"
	         "window_initial = 64\n\n"
	         "[channel.email]\ndriver = outbox\nfsync = yes\nfrom = Club <club@example.org>\n",
	         odir);

	int ndone = 0;
	static struct tl_send sms[40], mail[4];
	for (int i = 0; i < 30; i++)
		mk_msg(&sms[i], &ndone, "sms", "+989121234567", NULL, i == 7 ? fa_text : "hi",
		       NULL);
	sms[3].m.category = NULL; /* null in JSON */
	mk_msg(&mail[0], &ndone, "email", "maryam@example.org", fa_subject, fa_text, NULL);
	mk_msg(&mail[1], &ndone, "email", "ali@example.org", "Your receipt", "plain part",
	       "<p>html part</p>");
	mk_msg(&mail[2], &ndone, "email", "ali@example.org", "Hi\r\nBcc: victim@example.org", "x",
	       NULL);
	mk_msg(&mail[3], &ndone, "email", "ali@example.org\r\nBcc: v@example.org", "ok", "x", NULL);
	outbox_run(conf, 30, sms, mail, 4, &ndone);

	/* JSONL: one line per message, in send order, numbered */
	char path[512];
	snprintf(path, sizeof path, "%s/sms.jsonl", odir);
	char *data = read_text(path, NULL);
	char *save = NULL;
	int line = 0;
	for (char *l = strtok_r(data, "\n", &save); l; l = strtok_r(NULL, "\n", &save), line++) {
		assert_true(line < 30);
		json_error_t je;
		json_t *j = json_loads(l, 0, &je);
		assert_non_null(j);
		assert_string_equal(tl_jstr(j, "id"), sms[line].id);
		assert_string_equal(tl_jstr(j, "channel"), "sms");
		assert_string_equal(tl_jstr(j, "to"), "+989121234567");
		assert_string_equal(tl_jstr(j, "contact_id"), "c-42");
		assert_string_equal(tl_jstr(j, "text"), line == 7 ? fa_text : "hi");
		assert_true(json_is_null(json_object_get(j, "subject")));
		assert_true(json_is_null(json_object_get(j, "html")));
		if (line == 3)
			assert_true(json_is_null(json_object_get(j, "category")));
		assert_int_equal(json_integer_value(json_object_get(j, "attempt")), 1);
		assert_string_equal(tl_jstr(j, "created_at"), "2023-11-14T22:13:20.123Z");
		const char *sent = tl_jstr(j, "sent_at");
		assert_non_null(sent);
		assert_int_equal(strlen(sent), 24);
		assert_int_equal(sent[23], 'Z');
		json_decref(j);
		char want[64];
		snprintf(want, sizeof want, "sms.jsonl:%d", line + 1);
		assert_int_equal(sms[line].r.status, CHAN_OK);
		assert_string_equal(sms[line].r.provider_id, want);
	}
	assert_int_equal(line, 30);
	free(data);

	/* Maildir: the two good messages in new/, nothing left in tmp/ */
	char md[512];
	snprintf(md, sizeof md, "%s/email/new", odir);
	assert_int_equal(count_dir(md), 2);
	snprintf(path, sizeof path, "%s/email/tmp", odir);
	assert_int_equal(count_dir(path), 0);
	snprintf(path, sizeof path, "%s/email/cur", odir);
	assert_int_equal(count_dir(path), 0);
	assert_int_equal(mail[0].r.status, CHAN_OK);
	assert_int_equal(mail[1].r.status, CHAN_OK);
	assert_non_null(strchr(mail[0].r.provider_id, '_'));
	assert_string_not_equal(mail[0].r.provider_id, mail[1].r.provider_id);
	assert_int_equal(mail[2].r.status, CHAN_PERMFAIL);
	assert_string_equal(mail[2].r.reason,
	                    "subject contains CR, LF, control characters or invalid UTF-8");
	assert_int_equal(mail[3].r.status, CHAN_PERMFAIL);
	assert_string_equal(mail[3].r.reason, "to address is not a plain addr-spec");

	char *f0 = find_new_file(md, mail[0].r.provider_id);
	check_maildir_message(f0, fa_subject, fa_text);
	json_t *j = python_parse_mail(f0);
	assert_string_equal(tl_jstr(j, "subject"), fa_subject);
	assert_string_equal(tl_jstr(j, "to"), "maryam@example.org");
	assert_string_equal(tl_jstr(j, "from"), "Club <club@example.org>");
	assert_string_equal(tl_jstr(j, "type"), "text/plain");
	assert_int_equal(json_integer_value(json_object_get(j, "defects")), 0);
	assert_string_equal(tl_jstr(j, "text"), fa_text); /* CRLF made LF again */
	json_decref(j);
	free(f0);

	char *f1 = find_new_file(md, mail[1].r.provider_id);
	j = python_parse_mail(f1);
	assert_string_equal(tl_jstr(j, "subject"), "Your receipt");
	assert_string_equal(tl_jstr(j, "type"), "multipart/alternative");
	assert_int_equal(json_integer_value(json_object_get(j, "defects")), 0);
	assert_string_equal(tl_jstr(j, "text"), "plain part");
	assert_string_equal(tl_jstr(j, "html"), "<p>html part</p>");
	json_decref(j);
	free(f1);

	/* a restart appends and keeps counting lines */
	ndone = 0;
	static struct tl_send more[2], none[1];
	mk_msg(&more[0], &ndone, "sms", "+989121234567", NULL, "again", NULL);
	mk_msg(&more[1], &ndone, "sms", "+989121234567", NULL, "again", NULL);
	outbox_run(conf, 2, more, none, 0, &ndone);
	assert_string_equal(more[0].r.provider_id, "sms.jsonl:31");
	assert_string_equal(more[1].r.provider_id, "sms.jsonl:32");
}

static void test_outbox_unwritable(void **state)
{
	(void)state;
	char conf[2048], odir[320];
	snprintf(odir, sizeof odir, "%s/ro", tmpdir);
	snprintf(conf, sizeof conf,
	         "[outbox]\ndir = %s\n\n[channel.sms]\ndriver = outbox\n\n"
	         "[channel.email]\ndriver = outbox\n",
	         odir);
	/* the JSONL path is a directory: open fails, the send is TEMPFAIL */
	char p[512];
	assert_int_equal(mkdir(odir, 0700), 0);
	snprintf(p, sizeof p, "%s/sms.jsonl", odir);
	assert_int_equal(mkdir(p, 0700), 0);
	int ndone = 0;
	static struct tl_send s[1], none[1];
	mk_msg(&s[0], &ndone, "sms", "+989121234567", NULL, "x", NULL);
	outbox_run(conf, 1, s, none, 0, &ndone);
	assert_int_equal(s[0].r.status, CHAN_TEMPFAIL);
	assert_non_null(strstr(s[0].r.reason, "open: Is a directory"));

	/* the directory cannot be created: start fails, stop still works */
	snprintf(p, sizeof p, "%s/plainfile", tmpdir);
	tl_write_file(p, "x", 0666);
	snprintf(conf, sizeof conf,
	         "[outbox]\ndir = %s/sub\n\n[channel.sms]\ndriver = outbox\n\n"
	         "[channel.chat]\ndriver = outbox\n",
	         p);
	struct cfg_error err;
	struct config *cfg = load_cfg("bad-outbox.conf", conf, &err);
	if (!cfg)
		fail_msg("%s", err.msg);
	struct chan *chans;
	size_t n;
	assert_int_equal(chan_configure_all(cfg, &chans, &n, &err), 0);
	uv_loop_t loop;
	uv_loop_init(&loop);
	assert_int_equal(chan_start_all(chans, n, &loop), -ENOTDIR);
	tl_stop_all_and_close(&loop, chans, n);
	config_free(cfg);
}

/* ---- webhook against a real server ----------------------------------- */

static int start_sink(void)
{
	char script[PATH_MAX + 64];
	if (tl_find_fake("webhook_sink.py", script, sizeof script) < 0)
		return -1;
	const char *argv[] = {TL_PYTHON, script, secret_path, NULL};
	sink_pid = tl_spawn_fake(argv, &sink_port);
	return sink_pid > 0 ? 0 : -1;
}

struct wh_case {
	const char *path;
	const char *extra; /* more config lines */
	int port;          /* 0: the sink */
	int nmsg;
	int sequential; /* one at a time, same channel */
	int no_secret;  /* do not add the sink's secret_file */
	struct tl_send s[24];
};

static void webhook_run(struct wh_case *k)
{
	char conf[4096];
	snprintf(conf, sizeof conf,
	         "[channel.chat]\ndriver = webhook\nurl = http://127.0.0.1:%d%s\n"
	         "timeout = 400ms\nmax_inflight = 32\nwindow_initial = 32\n%s",
	         k->port ? k->port : sink_port, k->path, k->extra ? k->extra : "");
	if (!k->no_secret && (!k->extra || !strstr(k->extra, "secret_file"))) {
		size_t l = strlen(conf);
		snprintf(conf + l, sizeof conf - l, "secret_file = %s\n", secret_path);
	}
	struct cfg_error err;
	struct config *cfg = load_cfg("wh.conf", conf, &err);
	if (!cfg)
		fail_msg("%s", err.msg);
	struct chan *chans;
	size_t n;
	if (chan_configure_all(cfg, &chans, &n, &err) < 0)
		fail_msg("%s", err.msg);
	uv_loop_t loop;
	uv_loop_init(&loop);
	assert_int_equal(chan_start_all(chans, n, &loop), 0);
	int ndone = 0;
	int nmsg = k->nmsg ? k->nmsg : 1;
	for (int i = 0; i < nmsg; i++) {
		mk_msg(&k->s[i], &ndone, "chat", "tg:12345", i ? NULL : "subj", fa_text,
		       i == 1 ? "<b>x</b>" : NULL);
		assert_int_equal(chan_send(&chans[0], &k->s[i].m, tl_send_done, &k->s[i]), 0);
		assert_int_equal(ndone, i < nmsg && k->sequential ? i : 0);
		if (k->sequential)
			tl_run_until(&loop, &ndone, i + 1);
	}
	tl_run_until(&loop, &ndone, nmsg);
	tl_stop_all_and_close(&loop, chans, n);
	config_free(cfg);
}

static void test_webhook_ok(void **state)
{
	(void)state;
	struct wh_case k = {.path = "/ok", .nmsg = 20};
	webhook_run(&k);
	for (int i = 0; i < 20; i++) {
		char want[64];
		snprintf(want, sizeof want, "prov-%s", k.s[i].id);
		if (k.s[i].r.status != CHAN_OK)
			fail_msg("send %d: status %d reason %s", i, k.s[i].r.status,
			         k.s[i].r.reason);
		assert_string_equal(k.s[i].r.provider_id, want);
	}

	struct wh_case noid = {.path = "/noid"};
	webhook_run(&noid);
	assert_int_equal(noid.s[0].r.status, CHAN_OK);
	assert_string_equal(noid.s[0].r.provider_id, "");

	/* a secret_file wins over insecure_no_signature: the sink sees a signature */
	struct wh_case uns2 = {.path = "/unsigned", .extra = "insecure_no_signature = yes\n"};
	webhook_run(&uns2);
	assert_int_equal(uns2.s[0].r.status, CHAN_PERMFAIL);
	assert_string_equal(uns2.s[0].r.reason, "http 400");
}

static void test_webhook_unsigned_and_bad_secret(void **state)
{
	(void)state;
	/* the wrong secret: the sink's HMAC check refuses it */
	char other[512];
	snprintf(other, sizeof other, "%s/other-secret", tmpdir);
	tl_write_file(other, "not-the-sink-secret\n", 0666);
	char extra[600];
	snprintf(extra, sizeof extra, "secret_file = %s\n", other);
	struct wh_case bad = {.path = "/ok", .extra = extra};
	webhook_run(&bad);
	assert_int_equal(bad.s[0].r.status, CHAN_PERMFAIL); /* the sink checked the HMAC */
	assert_string_equal(bad.s[0].r.reason, "http 401");

	/* no secret at all: insecure_no_signature sends no signature header */
	struct wh_case uns = {
	    .path = "/unsigned", .extra = "insecure_no_signature = yes\n", .no_secret = 1};
	webhook_run(&uns);
	assert_int_equal(uns.s[0].r.status, CHAN_OK);
	snprintf(extra, sizeof extra, "prov-%s", uns.s[0].id);
	assert_string_equal(uns.s[0].r.provider_id, extra);
}

static void test_webhook_failures(void **state)
{
	(void)state;
	struct wh_case k429 = {.path = "/429"};
	webhook_run(&k429);
	assert_int_equal(k429.s[0].r.status, CHAN_TEMPFAIL);
	assert_string_equal(k429.s[0].r.reason, "http 429");
	assert_int_equal(k429.s[0].r.retry_after_ms, 7000);

	struct wh_case kdate = {.path = "/429date"};
	webhook_run(&kdate);
	assert_int_equal(kdate.s[0].r.status, CHAN_TEMPFAIL);
	/* 120 s ahead at one-second resolution; generous either way */
	assert_true(kdate.s[0].r.retry_after_ms > 60000);
	assert_true(kdate.s[0].r.retry_after_ms <= 121000);

	struct wh_case k500 = {.path = "/500"};
	webhook_run(&k500);
	assert_int_equal(k500.s[0].r.status, CHAN_TEMPFAIL);
	assert_string_equal(k500.s[0].r.reason, "http 500");

	struct wh_case k408 = {.path = "/408"};
	webhook_run(&k408);
	assert_int_equal(k408.s[0].r.status, CHAN_TEMPFAIL);
	assert_string_equal(k408.s[0].r.reason, "http 408");

	struct wh_case k400 = {.path = "/400"};
	webhook_run(&k400);
	assert_int_equal(k400.s[0].r.status, CHAN_PERMFAIL);
	assert_string_equal(k400.s[0].r.reason, "http 400");

	struct wh_case k302 = {.path = "/302"};
	webhook_run(&k302);
	assert_int_equal(k302.s[0].r.status, CHAN_TEMPFAIL); /* not followed */
	assert_string_equal(k302.s[0].r.reason, "http 302");

	struct wh_case big = {.path = "/big"};
	webhook_run(&big);
	assert_int_equal(big.s[0].r.status, CHAN_TEMPFAIL);
	assert_string_equal(big.s[0].r.reason, "response too large");

	struct wh_case slow = {.path = "/slow", .nmsg = 2};
	webhook_run(&slow);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(slow.s[i].r.status, CHAN_TEMPFAIL);
		assert_string_equal(slow.s[i].r.reason, "timeout");
	}

	/* a bound, never listening port: connection refused */
	int fd;
	int port = tl_bound_port(&fd);
	struct wh_case refused = {.path = "/ok", .port = port};
	webhook_run(&refused);
	close(fd);
	assert_int_equal(refused.s[0].r.status, CHAN_TEMPFAIL);
	assert_memory_equal(refused.s[0].r.reason, "connect: ", 9);
	assert_null(strstr(refused.s[0].r.reason, "/ok")); /* no URL path in reasons */
}

static void test_webhook_keepalive(void **state)
{
	(void)state;
	struct wh_case k = {.path = "/conn", .nmsg = 5, .sequential = 1};
	webhook_run(&k);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(k.s[i].r.status, CHAN_OK);
		assert_memory_equal(k.s[i].r.provider_id, "conn-", 5);
		assert_string_equal(k.s[i].r.provider_id, k.s[0].r.provider_id);
	}
}

/* ---- the HTTP client itself -------------------------------------------- */

struct http_probe {
	int done;
	long status;
	enum http_error err;
	char error[128];
};

static void on_http(void *arg, const struct http_resp *r)
{
	struct http_probe *p = arg;
	p->done++;
	p->status = r->status;
	p->err = r->err;
	snprintf(p->error, sizeof p->error, "%s", r->error);
}

static void test_http_cancel_on_put(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct http_client *h = http_client_get(&loop);
	assert_ptr_equal(http_client_get(&loop), h); /* one per loop */
	http_client_put(h);

	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", sink_port);
	struct http_req rq = {.url = url, .body = "{}", .body_len = 2, .timeout_ms = 10000};
	struct http_probe p = {0}, q = {0};
	assert_int_equal(http_request(h, &rq, on_http, &p), 0);
	struct http_req bad = {.url = url, .method = "GET\r\nX"};
	assert_int_equal(http_request(h, &bad, on_http, &q), -EINVAL);
	const char *hdrs[] = {"X-Evil: a\r\nHost: b", NULL};
	struct http_req bad2 = {.url = url, .headers = hdrs};
	assert_int_equal(http_request(h, &bad2, on_http, &q), -EINVAL);
	assert_int_equal(http_client_pending(h), 1);
	assert_int_equal(p.done, 0); /* never synchronous */
	/* let it connect and send, then close the client under it */
	for (int i = 0; i < 50; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(p.done, 0);
	http_client_put(h);
	assert_int_equal(p.done, 1);
	assert_int_equal(p.status, 0);
	assert_int_equal(p.err, HTTP_E_CANCELLED);
	assert_string_equal(p.error, "cancelled");
	assert_int_equal(q.done, 0);
	assert_int_equal(tl_loop_finish(&loop), 0);

	/* a wrong scheme fails inside curl, reported later, not from the call */
	uv_loop_init(&loop);
	h = http_client_get(&loop);
	struct http_req ftp = {.url = "ftp://127.0.0.1/x"};
	assert_int_equal(http_request(h, &ftp, on_http, &q), 0);
	assert_int_equal(q.done, 0);
	tl_run_until(&loop, &q.done, 1);
	assert_int_equal(q.status, 0);
	assert_int_equal(q.err, HTTP_E_TRANSPORT);
	http_client_put(h);
	assert_int_equal(tl_loop_finish(&loop), 0);
}

static void test_retry_after_parse(void **state)
{
	(void)state;
	int64_t ms;
	assert_int_equal(http_parse_retry_after("7", 0, &ms), 0);
	assert_int_equal(ms, 7000);
	assert_int_equal(http_parse_retry_after("  120 \r\n", 0, &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(http_parse_retry_after("0", 0, &ms), 0);
	assert_int_equal(ms, 0);
	/* Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 */
	int64_t t = 1445412480000;
	assert_int_equal(http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", t - 10000, &ms),
	                 0);
	assert_int_equal(ms, 10000);
	assert_int_equal(http_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", t + 5000, &ms), 0);
	assert_int_equal(ms, 0); /* in the past: retry now */
	assert_int_equal(http_parse_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", t, &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(http_parse_retry_after("-5", 0, &ms), -EINVAL);
	assert_int_equal(http_parse_retry_after("", 0, &ms), -EINVAL);
	assert_int_equal(http_parse_retry_after("12abc", 0, &ms), -EINVAL);
	assert_int_equal(http_parse_retry_after("soon", 0, &ms), -EINVAL);
	assert_int_equal(http_parse_retry_after("99999999999999999999", 0, &ms), -EINVAL);
}

static void test_msg_json(void **state)
{
	(void)state;
	struct tl_send s;
	int n = 0;
	mk_msg(&s, &n, "sms", "+98912", NULL, "bad \xff\xfe utf8", NULL);
	s.m.created_ms = 0;
	char *j = chan_msg_json(&s.m, 1700000000123);
	json_t *o = json_loads(j, 0, NULL);
	assert_non_null(o);
	assert_string_equal(tl_jstr(o, "text"), "bad \xef\xbf\xbd\xef\xbf\xbd utf8");
	assert_true(json_is_null(json_object_get(o, "created_at")));
	assert_string_equal(tl_jstr(o, "sent_at"), "2023-11-14T22:13:20.123Z");
	json_decref(o);
	free(j);
	char t[40];
	chan_rfc3339_ms(-1, t, sizeof t);
	assert_string_equal(t, "1969-12-31T23:59:59.999Z");
}

/* ---- setup ------------------------------------------------------------- */

static int group_setup(void **state)
{
	(void)state;
	log_setup(LOG_WARNING, LOG_FMT_KV);
	signal(SIGPIPE, SIG_IGN);
	if (tl_mkdtemp(tmpdir, sizeof tmpdir, "channels") < 0)
		return -1;
	snprintf(secret_path, sizeof secret_path, "%s/webhook-secret", tmpdir);
	tl_write_file(secret_path, "s3cret-\xd9\x85\n", 0600);
	return start_sink();
}

static int group_teardown(void **state)
{
	(void)state;
	tl_kill(sink_pid);
	tl_rmtree(tmpdir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bucket_math),
	    cmocka_unit_test(test_max_inflight),
	    cmocka_unit_test(test_never_synchronous),
	    cmocka_unit_test(test_rate_fifo),
	    cmocka_unit_test(test_stop),
	    cmocka_unit_test(test_window),
	    cmocka_unit_test(test_breaker_config),
	    cmocka_unit_test_teardown(test_breaker_open_probe, capture_teardown),
	    cmocka_unit_test(test_breaker_retry_after),
	    cmocka_unit_test(test_breaker_stragglers),
	    cmocka_unit_test(test_breaker_reconfigure),
	    cmocka_unit_test(test_registry_and_config),
	    cmocka_unit_test(test_msg_json),
	    cmocka_unit_test(test_outbox),
	    cmocka_unit_test(test_outbox_unwritable),
	    cmocka_unit_test(test_retry_after_parse),
	    cmocka_unit_test(test_http_cancel_on_put),
	    cmocka_unit_test(test_webhook_ok),
	    cmocka_unit_test(test_webhook_unsigned_and_bad_secret),
	    cmocka_unit_test(test_webhook_failures),
	    cmocka_unit_test(test_webhook_keepalive),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
